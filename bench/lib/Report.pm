package Report;

# The report: raw CSVs, bench/results/results.md (every figure with the
# command that produced it, targets with pass/fail) and results.png
# (bench/plot.gp), plus a summary on stdout.

use strict;
use warnings;

use POSIX qw(strftime);

use Bench;


my %NAME;           # variant id -> name
my %CONF;           # variant id -> template


sub fmt_num {
    my ($v, $d) = @_;

    return 'n/a' unless defined $v;

    my $s = sprintf("%.*f", $d // 0, $v);
    1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/;

    return $s;
}


sub pct { defined $_[0] ? sprintf('%.1f%%', $_[0] * 100) : 'n/a' }


sub verdict {
    my ($ok) = @_;

    return 'pending' unless defined $ok;
    return "**$ok**" if $ok =~ /^[A-Z]+$/;
    return $ok ? '**PASS**' : '**FAIL**';
}


# median over rounds of variant x / variant y in the same round
sub paired_ratio {
    my ($rows, $x, $y, $field) = @_;

    my %by;
    $by{$_->{round}}{$_->{variant}} = $_->{$field} for @$rows;

    my @r = map { $by{$_}{$x} / $by{$_}{$y} }
            grep { $by{$_}{$x} && $by{$_}{$y} } keys %by;

    return Bench::median(@r) unless wantarray;

    # with the interquartile range of the per-round ratios: the noise
    return (Bench::median(@r), Bench::percentile(25, @r),
            Bench::percentile(75, @r));
}


sub pct_iqr {
    my ($m, $lo, $hi) = @_;

    return 'n/a' unless defined $m;
    return sprintf('%.1f%% (IQR %.0f-%.0f%%)', 100 * $m, 100 * $lo,
                   100 * $hi);
}


sub x_iqr {
    my ($m, $lo, $hi) = @_;

    return 'n/a' unless defined $m;
    return sprintf('%.2fx (IQR %.2f-%.2f)', $m, $lo, $hi);
}


sub csv {
    my ($path, $cols, $rows) = @_;

    Bench::spew($path, join("\n", join(',', @$cols),
                            map { my $r = $_;
                                  join(',', map { my $v = $r->{$_};
                                                  defined $v ? $v : '' }
                                            @$cols) } @$rows) . "\n");
}


# one table of section 1 (one pinning mode); sets vs_a, vs_f, vs_c,
# cap_a, cap_c and their IQR strings in the mode's summary
sub tp_table {
    my ($res, $tp, $mode) = @_;

    my $s = $tp->{summary};
    my $rows = $tp->{rows};
    my @md;

    push @md, "### $mode" . ($mode eq 'pinned' ? ' (judged)' : ''), '',
        '| variant | req/s median (min-max) | vs (a) plain | '
        . 'vs (f) var plain | vs (c) Lua | p50 | p99 | CPU/req | '
        . 'capacity vs (a) | command |',
        '|---|---|---|---|---|---|---|---|---|---|';

    for my $v (@{$res->{variants}}) {
        my $id = $v->{id};

        next if $v->{cg_only};

        if ($v->{pending}) {
            push @md, "| ($id) $v->{name} | $v->{pending} | | | | | | | | |";
            next;
        }

        my $x = $s->{$id} or next;
        my @ra = paired_ratio($rows, $id, 'a', 'rps');
        my @rf = $s->{f} ? paired_ratio($rows, $id, 'f', 'rps') : ();
        my @rc = $s->{c} ? paired_ratio($rows, $id, 'c', 'rps') : ();
        my @ca = paired_ratio($rows, 'a', $id, 'cpu_us');
        my @cc = $s->{c} ? paired_ratio($rows, 'c', $id, 'cpu_us') : ();
        my ($ra, $rf, $rc, $ca, $cc) = map { $_->[0] }
                                       \@ra, \@rf, \@rc, \@ca, \@cc;

        push @md, sprintf(
            '| (%s) %s | %s (%s-%s)%s | %s | %s | %s | %s us | %s us | '
            . '%.1f us | %s | `%s` against nginx with `bench/%s` |',
            $id, $v->{name}, fmt_num($x->{rps}), fmt_num($x->{rps_min}),
            fmt_num($x->{rps_max}),
            $x->{errors} ? " **$x->{errors} errors**" : '',
            $id eq 'a' ? '100%' : pct_iqr(@ra),
            $id eq 'f' ? '100%' : pct_iqr(@rf),
            $id eq 'c' ? '1.00x' : x_iqr(@rc),
            fmt_num($x->{p50_us}), fmt_num($x->{p99_us}), $x->{cpu_us},
            $id eq 'a' ? '100%' : pct_iqr(@ca), $tp->{command},
            $v->{conf});

        $x->{vs_a} = $id eq 'a' ? 1 : $ra;
        $x->{vs_f} = $rf;
        $x->{vs_c} = $id eq 'c' ? 1 : $rc;
        $x->{cap_a} = $id eq 'a' ? 1 : $ca;
        $x->{cap_c} = $cc;
        $x->{iqr} = { vs_a => pct_iqr(@ra), vs_f => pct_iqr(@rf),
                      vs_c => x_iqr(@rc), cap_a => pct_iqr(@ca),
                      cap_c => x_iqr(@cc) };
    }

    my @all = values %$s;
    push @md, '', sprintf('During these runs the proxy worker '
        . 'was busy %.0f%% of the time (median)%s, and processes other '
        . 'than the benchmark\'s used %.0f%% of the machine\'s CPU '
        . '(median; this machine is shared).  Each run waited (up to '
        . '15 s) for them to use less than %.0f%%, and one during which '
        . 'they used more was done again, up to %d times, as long as '
        . 'waits and repeats added up to less than %.0f%% of the '
        . 'section\'s nominal time: %d runs were done again.',
        100 * Bench::median(map { $_->{proxy_util} } @$rows),
        $mode eq 'pinned' ? ' of its own CPU: the bottleneck when near '
                            . '100%' : '',
        100 * Bench::median(map { $_->{others} } @all),
        100 * $res->{cfg}{max_others}, $res->{cfg}{retries},
        100 * ($res->{cfg}{tp_budget} - 1), $tp->{retried}), '';

    return @md;
}


sub write {
    my ($res, $out, $no_gnuplot) = @_;

    my $cfg = $res->{cfg};
    my @md;
    my @targets;
    my @summary;

    for my $v (@{$res->{variants}}) {
        $NAME{$v->{id}} = $v->{name};
        $CONF{$v->{id}} = $v->{conf};
    }

    my $commit = `git -C '$Bench::ROOT' rev-parse --short HEAD 2>/dev/null`;
    chomp $commit;
    my $dirty = `git -C '$Bench::ROOT' status --porcelain -- src 2>/dev/null`;
    $commit .= ' (src/ modified)' if length $dirty;
    my ($nginx_v) = (`$Bench::NGINX -v 2>&1` =~ m{nginx/(\S+)});
    my $kernel = `uname -r`;
    chomp $kernel;
    my $ncpu = `nproc` + 0;

    push @md, '# ngx_http_canary_module benchmarks', '',
        "Produced by `make bench` (bench/run) on "
        . strftime('%Y-%m-%d %H:%M UTC', gmtime)
        . " in " . sprintf('%.0f', $res->{elapsed}) . " s: commit $commit, "
        . "nginx $nginx_v, Linux $kernel, $ncpu CPUs, loopback only.  "
        . "Settings: BENCH_ROUNDS=$cfg->{rounds} "
        . "BENCH_SECONDS=$cfg->{seconds} BENCH_CONNECTIONS=$cfg->{connections} "
        . "BENCH_THREADS=$cfg->{threads} BENCH_WORKERS=$cfg->{workers} "
        . "BENCH_TENANTS=$cfg->{tenants} BENCH_PIN=$cfg->{pin} "
        . "BENCH_CG_REQUESTS=$cfg->{cg_requests} "
        . "BENCH_PROP_WRITES=$cfg->{prop_writes} "
        . "BENCH_GUARD_RUNS=$cfg->{guard_runs} "
        . "BENCH_SIDECAR_RUNS=$cfg->{sidecar_runs} BENCH_PINS=$cfg->{pins} "
        . "BENCH_SCRAPE_SECONDS=$cfg->{scrape_seconds} "
        . "BENCH_SCRAPE_TRAFFIC=$cfg->{scrape_traffic} "
        . "BENCH_SCRAPE_CG=$cfg->{scrape_cg}.",
        '', 'How each figure is measured: bench/README.md.  Raw data: the '
        . 'CSV files beside this one.', '';

    # ---- 1. throughput -----------------------------------------------------

    my @tp_section;
    my $tp = $res->{throughput};
    my $modes = $res->{throughput_modes} || {};

    if ($tp) {
        my @csv;

        push @tp_section, '## 1. Throughput and latency', '',
            "wrk, $cfg->{threads} thread(s), $cfg->{connections} keep-alive "
            . "connections, $cfg->{seconds} s per run, $cfg->{rounds} "
            . 'interleaved rounds (a b c ... a b c ...) after a '
            . "$cfg->{warmup} s warm-up of each; $cfg->{tenants} tenants "
            . 'in X-Tenant-Id with a few X-Canary and Cookie overrides '
            . '(bench/tenants.lua).  Proxy under test: '
            . "$cfg->{workers} worker; origins a separate nginx (1 worker, "
            . '`return 200`).  Run '
            . join(' then ', map { $_ eq 'pinned'
                                   ? 'pinned (`taskset`: the proxy worker '
                                     . 'alone on CPU 0, wrk and the origins '
                                     . 'on CPU 1, so that the proxy is the '
                                     . 'bottleneck and the ratios measure '
                                     . 'it: the judged figures)'
                                   : 'unpinned (scheduling left to the '
                                     . 'kernel; reported beside them)' }
                        grep { $modes->{$_} } qw(unpinned pinned))
            . '.  Medians over rounds; ratios are medians of the per-round '
            . 'ratios (same round, so drift cancels), with their '
            . 'interquartile range: the noise of this machine.  '
            . '"CPU/req" is the proxy worker\'s user+system CPU time per '
            . 'request (/proc); '
            . '"capacity" compares it with (a): (a)\'s CPU/req divided by '
            . "the variant's, the throughput ratio one would see if the "
            . 'proxy alone were the bottleneck.', '';

        for my $mode (grep { $modes->{$_} } qw(pinned unpinned)) {
            my $t = $modes->{$mode};

            push @csv, map { +{ %$_, mode => $mode } } @{$t->{rows}};
            push @tp_section, tp_table($res, $t, $mode);
        }

        csv("$out/throughput.csv",
            [qw(mode round variant rps p50_us p90_us p99_us p999_us mean_us
                max_us errors cpu_us proxy_util client_util others requests
                duration_us)],
            [map { +{ %$_, rps => sprintf('%.1f', $_->{rps}),
                      cpu_us => sprintf('%.2f', $_->{cpu_us}),
                      proxy_util => sprintf('%.3f', $_->{proxy_util}),
                      client_util => sprintf('%.3f', $_->{client_util}),
                      others => sprintf('%.3f', $_->{others}) } } @csv]);

        my $s = $tp->{summary};
        my $un = $tp->{mode} eq 'pinned' && $modes->{unpinned}
                 ? $modes->{unpinned}{summary} : undef;
        my $tag = $tp->{mode} eq 'pinned' ? 'pinned' : 'unpinned';
        my $beside = sub {
            my ($id, $field) = @_;
            return '' unless $un && $un->{$id} && $un->{$id}{iqr};
            return "; unpinned: $un->{$id}{iqr}{$field}";
        };

        push @tp_section, 'Why "module/Lua >= 0.98 x plain/Lua" and not the '
            . 'earlier ">= 1.25x the Lua split": a module that cost nothing '
            . 'would equal the plain proxy (a), and (a) itself is only '
            . 'about 1.2x the Lua split (c) on this machine, because the '
            . "kernel's share of each request (loopback TCP both ways, "
            . 'epoll) dominates the proxy\'s work; 1.25x was above the '
            . 'physical limit.  In one round module/Lua divided by '
            . 'plain/Lua is (d)/(a), so the target is judged on the median '
            . 'of the per-round (d)/(a) and the two ratios are printed '
            . 'beside it.', '';

        my $bott = $tp->{mode} eq 'pinned'
                   ? Bench::median(map { $_->{proxy_util} }
                                   @{$tp->{rows}}) : undef;

        for my $id (qw(d g)) {
            my $x = $s->{$id};

            if (!$x) {
                push @targets, ["throughput ($tag): module/Lua >= 0.98 x "
                                . "plain/Lua, ($id)/(c) vs (a)/(c)",
                                'not run', undef];
                next;
            }

            my $form = $id eq 'd' ? 'variable form (d)'
                                  : 'upstream-level form (g)';

            push @targets,
                ["throughput ($tag): $form, module/Lua >= 0.98 x plain/Lua "
                 . "(per round: ($id)/(c) / ((a)/(c)) = ($id)/(a))",
                 sprintf('%s; (%s)/(c) %s, (a)/(c) %s; %s vs %s req/s%s',
                         $x->{iqr}{vs_a}, $id,
                         defined $x->{vs_c} ? sprintf('%.2fx', $x->{vs_c})
                                            : 'n/a (no Lua)',
                         $s->{a} && defined $s->{a}{vs_c}
                             ? sprintf('%.2fx', $s->{a}{vs_c}) : 'n/a',
                         fmt_num($x->{rps}), fmt_num($s->{a}{rps}),
                         $beside->($id, 'vs_a')),
                 defined $x->{vs_a} ? $x->{vs_a} >= 0.98 : undef],
                ["supplementary ($tag): $form capacity by proxy CPU/request "
                 . ">= 98% of the plain proxy, (a)/($id)",
                 sprintf('%s; %.1f vs %.1f us/request%s', $x->{iqr}{cap_a},
                         $x->{cpu_us}, $s->{a}{cpu_us},
                         $beside->($id, 'cap_a')),
                 defined $x->{cap_a} ? $x->{cap_a} >= 0.98 : undef];
        }

        if (defined $bott) {
            push @targets,
                ['pinned: the proxy is the bottleneck (its worker busy '
                 . '>= 90% of its CPU, median over all runs)',
                 sprintf('%.0f%% (per variant: %s); wrk and the origins '
                         . 'together on CPU 1: %.0f%%', 100 * $bott,
                         join(', ', map { sprintf('(%s) %.0f%%', $_,
                                                  100 * $s->{$_}{util}) }
                                    sort keys %$s),
                         100 * Bench::median(map { $_->{client_util} }
                                             @{$tp->{rows}})),
                 $bott >= 0.90];
        }

        for my $mode (grep { $modes->{$_} } qw(pinned unpinned)) {
            my $ms = $modes->{$mode}{summary};

            for my $id (sort keys %$ms) {
                push @summary, sprintf('throughput %-8s (%s) %-42s %9s req/s'
                                       . '  p50 %6s us  p99 %6s us  '
                                       . '%5.1f us CPU/req  vs plain %s',
                                       $mode, $id, $NAME{$id},
                                       fmt_num($ms->{$id}{rps}),
                                       fmt_num($ms->{$id}{p50_us}),
                                       fmt_num($ms->{$id}{p99_us}),
                                       $ms->{$id}{cpu_us},
                                       pct($ms->{$id}{vs_a}));
            }
        }

        push @summary, sprintf('throughput pinned: proxy worker busy %.0f%% '
                               . 'of its CPU (median)', 100 * $bott)
            if defined $bott;
    } else {
        push @tp_section, '## 1. Throughput and latency', '',
            'Not run' . ($res->{throughput_skipped}
                         ? ": $res->{throughput_skipped}" : '') . '.', '';
        push @targets, ['throughput: module/Lua >= 0.98 x plain/Lua',
                        'not run', undef];
    }

    # ---- 2. callgrind ------------------------------------------------------

    my @cg_section;
    my $cg = $res->{callgrind};

    if ($cg) {
        my $p = $cg->{per};
        my @rows;
        my @frows;

        push @cg_section, '## 2. Instructions per request (callgrind)', '',
            "nginx in single-process mode under callgrind, one keep-alive "
            . "client, $cg->{warmup} warm-up requests then N or 2N "
            . "requests of the same mix (N = $cg->{n}); Ir per request = "
            . "(Ir(2N run) - Ir(N run)) / N, which cancels start-up, "
            . 'warm-up and exit.  Deterministic: instructions, not time.  '
            . 'The "malloc/free" column gives the Ir spent in glibc\'s '
            . 'allocator and its calls per request (malloc + free + '
            . 'posix_memalign, counted from the callgrind data): a variant '
            . 'whose request pool outgrows its first block makes a few more '
            . 'calls, and the same calls cost a few hundred Ir more or less '
            . 'depending on the heap layout the configuration left (compare '
            . 'two variants with the same number of calls).  The last two '
            . 'columns leave the allocator out.  LuaJIT compiles its '
            . 'traces differently from run to run (a few % of Ir), so (c) '
            . 'is the median of three pairs of runs.  (h) and (i) run '
            . 'issue 21\'s mix (1 request in 50 with `X-Canary-Opt-In: '
            . 'true`, no other override header): their "vs (f)" columns '
            . 'compare (h) with (i).  "module\'s own": the Ir of the '
            . 'module\'s entry points (below).', '',
            '| variant | Ir/request | vs (f) var plain | vs (a) plain | '
            . 'malloc/free | without malloc/free: vs (f) | vs (a) '
            . '| module\'s own | command |',
            '|---|---|---|---|---|---|---|---|---|';

        for my $v (@{$res->{variants}}) {
            my $id = $v->{id};

            if ($v->{pending}) {
                push @cg_section, "| ($id) $v->{name} | $v->{pending} "
                                  . '| | | | | | | |';
                next;
            }

            my $x = $p->{$id} or next;
            my $rel = sub {
                my ($base, $heap) = @_;
                # the seed mix's variants against their own floor (i)
                $base = $v->{mix_kind} ? ($base eq 'f' ? 'i' : '') : $base;
                my $b = $p->{$base} or return undef;
                return $heap ? ($x->{ir} - $x->{heap})
                               / ($b->{ir} - $b->{heap}) - 1
                             : $x->{ir} / $b->{ir} - 1;
            };
            my $sp = sub { defined $_[0] ? sprintf('%+.1f%%', $_[0] * 100)
                                         : 'n/a' };

            $x->{vs_f} = $rel->('f');
            $x->{vs_a} = $rel->('a');
            $x->{vs_f_heap} = $rel->('f', 1);
            $x->{vs_a_heap} = $rel->('a', 1);

            my $all = @{$x->{all}} > 1
                      ? ' (median of ' . join(', ', map { fmt_num($_) }
                                               @{$x->{all}}) . ')'
                      : '';

            push @cg_section, sprintf('| (%s) %s | %s%s | %s | %s | %s | %s '
                                      . '| %s | %s | `%s`, `bench/%s` |',
                                      $id,
                                      $v->{name}, fmt_num($x->{ir}), $all,
                                      $sp->($x->{vs_f}), $sp->($x->{vs_a}),
                                      sprintf('%s Ir, %.1f calls',
                                              fmt_num($x->{heap}),
                                              $x->{allocs}),
                                      $sp->($x->{vs_f_heap}),
                                      $sp->($x->{vs_a_heap}),
                                      $x->{own}{own} >= 0.5
                                          ? fmt_num($x->{own}{own}) : '-',
                                      $cg->{command}, $v->{conf});

            push @rows, { variant => $id, ir_per_request =>
                          sprintf('%.1f', $x->{ir}),
                          malloc_free_ir => sprintf('%.1f', $x->{heap}),
                          malloc_free_calls => sprintf('%.2f', $x->{allocs}),
                          module_own => sprintf('%.1f', $x->{own}{own}),
                          module_timer => sprintf('%.1f', $x->{own}{timer}),
                          ir_n => $x->{ir_n}, ir_2n => $x->{ir_2n} };

            for my $kind (qw(self inclusive)) {
                for my $f (sort { $x->{$kind}{$b} <=> $x->{$kind}{$a} }
                           keys %{$x->{$kind}})
                {
                    push @frows, { variant => $id, kind => $kind,
                                   function => "\"$f\"",
                                   ir_per_request =>
                                       sprintf('%.1f', $x->{$kind}{$f}) };
                }
            }
        }

        csv("$out/callgrind.csv",
            [qw(variant ir_per_request malloc_free_ir malloc_free_calls
                module_own module_timer ir_n ir_2n)], \@rows);
        csv("$out/callgrind-functions.csv",
            [qw(variant kind function ir_per_request)], \@frows);

        push @cg_section, '', own_breakdown($p, [qw(d g h)]), '';
        push @cg_section, alloc_pairs($p), '';
        push @cg_section, analysis($p, 'd', 'f'), '';
        push @cg_section, analysis($p, 'g', 'a'), '' if $p->{g};
        push @cg_section, analysis($p, 'h', 'i'), '' if $p->{h} && $p->{i};

        my %pend = map { $_->{id} => $_->{pending} } @{$res->{variants}};

        for my $pair (['d', 'f', 'variable form (d)',
                       'the variable plain proxy (f)'],
                      ['g', 'a', 'upstream-level form (g)',
                       'the static plain proxy (a)'])
        {
            my ($x, $b, $xn, $bn) = @$pair;
            my $X = $p->{$x};
            my $B = $p->{$b};
            my $why = $pend{$x} // $pend{$b} // 'not run';

            push @targets,
                ["callgrind: $xn module's own instructions <= 400 "
                 . 'Ir/request (entry points with what they call, the '
                 . '100 ms timer left out)',
                 $X ? sprintf('%s Ir/request (%s%s)', fmt_num($X->{own}{own}),
                              own_top($X->{own}),
                              ($X->{own}{delegated_ir} // 0) >= 0.5
                              ? sprintf('; less %.0f in the chosen group\'s '
                                        . 'own balancer',
                                        $X->{own}{delegated_ir})
                              : '')
                    : $why,
                 $X ? $X->{own}{own} <= 400 : undef];

            my $ok = $X && $B;

            push @targets,
                ["callgrind: $xn <= 2% over $bn, with malloc/free",
                 $ok ? sprintf('%+.2f%% (%s vs %s Ir/request)',
                               ($X->{ir} / $B->{ir} - 1) * 100,
                               fmt_num($X->{ir}), fmt_num($B->{ir}))
                     : $why,
                 $ok ? $X->{ir} / $B->{ir} - 1 <= 0.02 : undef],
                ["callgrind: $xn <= 2% over $bn, without malloc/free",
                 $ok ? sprintf('%+.2f%% (%s vs %s Ir/request)',
                               (($X->{ir} - $X->{heap})
                                / ($B->{ir} - $B->{heap}) - 1) * 100,
                               fmt_num($X->{ir} - $X->{heap}),
                               fmt_num($B->{ir} - $B->{heap}))
                     : $why,
                 $ok ? ($X->{ir} - $X->{heap}) / ($B->{ir} - $B->{heap}) - 1
                       <= 0.02 : undef],
                ["callgrind: allocator calls per request, $xn vs $bn",
                 $ok ? alloc_text($X, $B, $x, $b) : $why,
                 $ok ? (abs($X->{allocs} - $B->{allocs}) < 0.05
                        ? 'EQUAL' : 'DIFFER') : undef];
        }

        if ($p->{h} && $p->{i}) {
            my ($h, $i) = ($p->{h}, $p->{i});

            push @targets,
                ["supplementary, callgrind: issue 21's configuration (h) "
                 . '(two seed overrides, cookie, 2% opt-in) vs (i), the '
                 . 'variable plain proxy under the same mix, <= 2%',
                 sprintf('%+.2f%% with malloc/free, %+.2f%% without '
                         . '(%s vs %s Ir/request); module\'s own %s Ir; '
                         . 'allocator calls %s',
                         ($h->{ir} / $i->{ir} - 1) * 100,
                         (($h->{ir} - $h->{heap}) / ($i->{ir} - $i->{heap})
                          - 1) * 100, fmt_num($h->{ir}), fmt_num($i->{ir}),
                         fmt_num($h->{own}{own}),
                         alloc_text($h, $i, 'h', 'i')),
                 $h->{ir} / $i->{ir} - 1 <= 0.02
                 && ($h->{ir} - $h->{heap}) / ($i->{ir} - $i->{heap}) - 1
                    <= 0.02];
        } else {
            push @targets,
                ["supplementary, callgrind: issue 21's configuration (h) vs "
                 . '(i), <= 2%', $pend{h} // $pend{i} // 'not run', undef];
        }

        for my $id (sort keys %$p) {
            push @summary, sprintf('callgrind  (%s) %-42s %9s Ir/request  '
                                   . '%5.2f allocator calls  module\'s own '
                                   . '%s', $id, $NAME{$id},
                                   fmt_num($p->{$id}{ir}), $p->{$id}{allocs},
                                   $p->{$id}{own}{own} >= 0.5
                                   ? fmt_num($p->{$id}{own}{own}) : '-');
        }
    } else {
        push @cg_section, '## 2. Instructions per request (callgrind)', '',
            'Not run' . ($res->{callgrind_skipped}
                         ? ": $res->{callgrind_skipped}" : '') . '.', '';
        push @targets, ["callgrind: module's own instructions <= 400 "
                        . 'Ir/request', 'not run', undef],
                       ['callgrind: both forms <= 2% over their plain proxy',
                        'not run', undef];
    }

    # ---- 3. propagation ----------------------------------------------------

    my @pr_section = ('## 3. Weight propagation', '');
    my $pr = $res->{propagation};

    if ($pr) {
        csv("$out/propagation.csv",
            [qw(write mode weight all_ms a_ms b_ms ctl_ms rounds)],
            [map { my $r = $_;
                   +{ %$r, map { ($_ => defined $r->{$_}
                                       ? sprintf('%.2f', $r->{$_}) : '') }
                           qw(all_ms a_ms b_ms ctl_ms) } } @{$pr->{rows}}]);

        push @pr_section,
            "$pr->{writes} writes of a new weight with `scripts/canary-ctl "
            . 'set-weight`, interleaved with as many direct writes of the '
            . 'same commands (one pipeline on an open Redis connection, as '
            . 'canary-sidecar writes), to one redis-server shared by two '
            . 'nginx (4 workers each, `canary_redis` with its defaults, '
            . '`listen ... reuseport`).  Time from just before the write '
            . 'starts to the first answer with the new `$canary_weight` '
            . 'from the slowest of the 8 workers; the poller holds one '
            . 'keep-alive connection per worker (`$pid` in the body) and '
            . 'asks all 8 in rounds every '
            . sprintf('%.1f ms', $pr->{round_ms}) . ' (the resolution).',
            '', '| figure | value | command |', '|---|---|---|',
            sprintf('| propagation to all 8 workers after canary-ctl, p50 | '
                    . '%.1f ms | `%s` |', $pr->{p50_ms}, $pr->{command}),
            sprintf('| propagation to all 8 workers after canary-ctl, p99 | '
                    . '%.1f ms | same |', $pr->{p99_ms}),
            sprintf('| propagation to all 8 workers after canary-ctl, max | '
                    . '%.1f ms | same |', $pr->{max_ms}),
            sprintf('| canary-ctl\'s own run time (bash and one '
                    . 'redis-cli), p50 / p99 | %.1f / %.1f ms | same (exit of '
                    . 'canary-ctl) |', $pr->{ctl_p50}, $pr->{ctl_p99}),
            sprintf('| propagation to all 8 workers after a direct write, '
                    . 'p50 / p99 / max | %.1f / %.1f / %.1f ms | `%s` |',
                    $pr->{direct_p50}, $pr->{direct_p99}, $pr->{direct_max},
                    $pr->{command_direct}),
            '';

        push @targets, ['weight propagation p99 < 50 ms from canary-ctl '
                        . 'set-weight (2 nginx x 4 workers)',
                        sprintf('%.1f ms (p50 %.1f ms; canary-ctl alone '
                                . 'p50 %.1f ms)', $pr->{p99_ms},
                                $pr->{p50_ms}, $pr->{ctl_p50}),
                        $pr->{p99_ms} < 50],
                       ['supplementary: propagation p99 < 50 ms from a '
                        . 'direct Redis write',
                        sprintf('%.1f ms (p50 %.1f ms)', $pr->{direct_p99},
                                $pr->{direct_p50}),
                        $pr->{direct_p99} < 50];

        push @summary, sprintf('propagation: p50 %.1f ms  p99 %.1f ms  max '
                               . '%.1f ms  (canary-ctl alone p50 %.1f ms; '
                               . 'direct write p50 %.1f ms p99 %.1f ms)',
                               $pr->{p50_ms}, $pr->{p99_ms}, $pr->{max_ms},
                               $pr->{ctl_p50}, $pr->{direct_p50},
                               $pr->{direct_p99});
    } else {
        push @pr_section, 'Not run' . ($res->{propagation_skipped}
                          ? ": $res->{propagation_skipped}" : '') . '.', '';
        push @targets, ['weight propagation p99 < 50 ms', 'not run', undef];
    }

    # ---- 4. rollback -------------------------------------------------------

    my @rb_section = ('## 4. Rollback', '');
    my $rb = $res->{rollback};

    if ($rb) {
        my @rows;

        for my $path (qw(guard sidecar)) {
            for my $r (@{$rb->{$path}{runs} || []}) {
                push @rows, {
                    path => $path, run => $r->{run},
                    last_canary_ms => ms($r->{last_canary_s}),
                    first_fail_ms => ms($r->{first_fail_s}),
                    exposure_ms => ms($r->{exposure_s}),
                    trip_or_weight0_ms => ms($r->{tripped_s}
                                             // $r->{weight0_s}),
                    failed => $r->{failed}, requests => $r->{requests},
                    canary_before => $r->{canary_before} };
            }
        }

        csv("$out/rollback.csv",
            [qw(path run last_canary_ms first_fail_ms exposure_ms
                trip_or_weight0_ms failed requests canary_before)], \@rows);

        push @rb_section,
            "Paced keep-alive clients ($cfg->{rollback_rate} req/s, "
            . 'tenants only, 20% on canary) through nginx (2 workers); at '
            . 'time 0 the canary origin starts answering 500 (its fault '
            . 'file).  Rollback = the last response from the canary origin '
            . 'after time 0.  "Exposure" = from the first 500 the clients '
            . 'saw to that last canary response.', '',
            '| path | rollback median | max | exposure median | failed '
            . 'requests (median) | runs | command |',
            '|---|---|---|---|---|---|---|';

        for my $path (qw(guard sidecar)) {
            my $x = $rb->{$path};

            if ($x->{pending}) {
                push @rb_section, "| $path | $x->{pending} | | | | | |";
                next;
            }

            push @rb_section, sprintf('| %s | %s | %s | %s | %s | %d | `%s` |',
                                      $path, sec($x->{median_s}),
                                      sec($x->{max_s}), sec($x->{exposure_s}),
                                      $x->{failed} // 'n/a',
                                      scalar(@{$x->{runs}}), $x->{command});
        }

        push @rb_section, '';

        my $g = $rb->{guard};
        my $sc = $rb->{sidecar};

        push @targets,
            ['guard rollback < 1 s', defined $g->{median_s}
                 ? sec($g->{median_s}) . ' median, ' . sec($g->{max_s})
                   . ' max' : 'n/a',
             defined $g->{median_s} ? $g->{median_s} < 1 : undef],
            ['sidecar rollback < 10 s',
             $sc->{pending} // (sec($sc->{median_s}) . ' median, '
                                . sec($sc->{max_s}) . ' max'),
             $sc->{pending} ? undef : $sc->{median_s} < 10];

        push @summary, sprintf('rollback: guard median %s; sidecar %s',
                               sec($g->{median_s}),
                               $sc->{pending} // ('median '
                                                  . sec($sc->{median_s})));
    } else {
        push @rb_section, 'Not run.', '';
        push @targets, ['guard rollback < 1 s', 'not run', undef],
                       ['sidecar rollback < 10 s', 'not run', undef];
    }

    # ---- 5. memory ---------------------------------------------------------

    my @mem_section = ('## 5. Memory', '');
    my $mem = $res->{memory};

    if ($mem) {
        my @rows = (
            [zone_used_1_split => $mem->{used_1}],
            ["zone_used_" . ($mem->{splits} + 1) . "_splits" =>
             $mem->{used_k}],
            [zone_bytes_per_split => sprintf('%.0f', $mem->{per_split})],
            [zone_used_before_pins => $mem->{pins_before}],
            [zone_used_after_pins => $mem->{pins_after}],
            [pins => $mem->{pins}],
            [pin_key_bytes => sprintf('%.1f', $mem->{pin_key_bytes})],
            [zone_bytes_per_pin => sprintf('%.2f', $mem->{per_pin})],
        );

        for my $k (qw(plain loaded module)) {
            for my $f (qw(VmRSS RssAnon RssFile RssShmem Pss)) {
                push @rows, ["worker_${f}_kb_$k" => $mem->{"rss_$k"}{$f}];
            }
        }

        csv("$out/memory.csv", [qw(figure value)],
            [map { { figure => $_->[0], value => $_->[1] } } @rows]);

        my $rp = $mem->{rss_plain};
        my $rl = $mem->{rss_loaded};
        my $rm = $mem->{rss_module};

        push @mem_section, '| figure | value | command |', '|---|---|---|',
            sprintf('| zone bytes per split | %s (zone.used %s with 1 split, '
                    . '%s with %d) | `%s` |', fmt_num($mem->{per_split}),
                    fmt_num($mem->{used_1}), fmt_num($mem->{used_k}),
                    $mem->{splits} + 1, $mem->{command_zone}),
            sprintf('| zone bytes per pinned tenant | %.1f (%s pins of '
                    . '%.0f-byte tenant ids: zone.used %s -> %s) | `%s` |',
                    $mem->{per_pin}, fmt_num($mem->{pins}),
                    $mem->{pin_key_bytes}, fmt_num($mem->{pins_before}),
                    fmt_num($mem->{pins_after}), $mem->{command_pins}),
            sprintf('| worker RSS without the module | %s kB (anon %s, '
                    . 'file %s, shmem %s; PSS %s) | `%s`, '
                    . '`bench/memory-rss-plain.conf` |',
                    map({ fmt_num($rp->{$_}) }
                        qw(VmRSS RssAnon RssFile RssShmem Pss)),
                    $mem->{command_rss}),
            sprintf('| worker RSS, module loaded, no directives | %s kB '
                    . '(%+d kB; anon %s, file %s, shmem %s; PSS %s) | same, '
                    . 'plus `load_module` |', fmt_num($rl->{VmRSS}),
                    $rl->{VmRSS} - $rp->{VmRSS},
                    map({ fmt_num($rl->{$_}) }
                        qw(RssAnon RssFile RssShmem Pss))),
            sprintf('| worker RSS with the module routing | %s kB '
                    . '(%+d kB; anon %s, file %s, shmem %s; PSS %s) | same, '
                    . '`bench/memory-rss-module.conf` (canary_zone 1m) |',
                    fmt_num($rm->{VmRSS}), $rm->{VmRSS} - $rp->{VmRSS},
                    map({ fmt_num($rm->{$_}) }
                        qw(RssAnon RssFile RssShmem Pss))),
            '';

        push @summary, sprintf('memory: %s bytes per split, %.1f bytes per '
                               . 'pinned tenant; worker RSS %d kB -> %d kB '
                               . 'with the module', fmt_num($mem->{per_split}),
                               $mem->{per_pin}, $rp->{VmRSS}, $rm->{VmRSS});
    } else {
        push @mem_section, 'Not run' . ($res->{memory_skipped}
                           ? ": $res->{memory_skipped}" : '') . '.', '';
    }

    # ---- 7. scrape ---------------------------------------------------------

    my @sc_section = ('## 7. /canary_status scrapes (10 splits)', '');
    my $sc = $res->{scrape};

    if ($sc) {
        my $c = $sc->{cpu};
        my $g = $sc->{cg};
        my @rows;

        push @sc_section,
            "nginx (1 worker) with $sc->{splits} splits "
            . '(bench/scrape.conf, bench/lib/Scrape.pm: weights 1 to 50 %, '
            . 'overrides and a cookie in half of them, cohorts with '
            . '`cohort_weight` in three, guards in five; no pins: they '
            . "need Redis); $sc->{traffic} requests through all the "
            . 'splits first (tenants, cohorts, the opt-in header on 2%), '
            . 'so that every split has counters and histograms on both '
            . 'sides.  Then wrk with one connection on each format for '
            . "$sc->{seconds} s (after 1 s of warm-up): worker CPU per "
            . 'scrape = the worker\'s user+system time (/proc/PID/stat) '
            . 'over the scrapes wrk counted'
            . ($c && $c->{pinned} ? '; worker on CPU 0, wrk on CPU 1'
                                  : '')
            . '.  Callgrind: nginx in single-process mode, the same '
            . 'splits, ' . ($g ? $g->{traffic} : 'some')
            . ' requests, then N or 2N scrapes; per scrape = (run 2N - '
            . 'run N) / N, without `ngx_http_canary_tick` (a 100 ms '
            . 'timer); allocator calls = malloc + free + posix_memalign; '
            . 'printf calls = calls from outside libc into its printf '
            . 'family (snprintf, vsnprintf, ...).', '',
            '| format | bytes | scrapes/s (wrk -c1) | worker CPU per scrape '
            . '| worker busy | Ir per scrape | allocator calls per scrape '
            . '| printf calls per scrape | command |',
            '|---|---|---|---|---|---|---|---|---|';

        for my $f (qw(json prometheus)) {
            my $x = $c ? $c->{$f} : undef;
            my $y = $g ? $g->{$f} : undef;

            push @sc_section, sprintf('| %s | %s | %s | %s | %s | %s | %s | '
                                      . '%s | `%s`; `%s` |', $f,
                $x ? fmt_num($x->{bytes}) : 'n/a',
                $x ? fmt_num($x->{per_s}) : 'n/a',
                $x && defined $x->{cpu_ms} ? sprintf('%.3f ms', $x->{cpu_ms})
                                           : 'n/a',
                $x ? sprintf('%.0f%%', 100 * $x->{util}) : 'n/a',
                $y ? fmt_num($y->{ir}) : 'n/a',
                $y ? sprintf('%.1f', $y->{allocs}) : 'n/a',
                $y ? sprintf('%.1f', $y->{printf}) : 'n/a',
                $x ? $x->{command} : 'wrk not run',
                $g ? $g->{command} : 'callgrind not run');

            push @rows, { format => $f,
                          bytes => $x ? $x->{bytes} : '',
                          scrapes_per_s => $x ? sprintf('%.1f', $x->{per_s})
                                              : '',
                          cpu_ms_per_scrape => $x && defined $x->{cpu_ms}
                              ? sprintf('%.4f', $x->{cpu_ms}) : '',
                          ir_per_scrape => $y ? sprintf('%.0f', $y->{ir})
                                              : '',
                          alloc_calls => $y ? sprintf('%.1f', $y->{allocs})
                                            : '',
                          printf_calls => $y ? sprintf('%.1f', $y->{printf})
                                             : '' };
        }

        push @sc_section, '';

        csv("$out/scrape.csv",
            [qw(format bytes scrapes_per_s cpu_ms_per_scrape ir_per_scrape
                alloc_calls printf_calls)], \@rows);

        my $j = $c ? $c->{json} : undef;

        push @targets,
            ["scrape: a $sc->{splits}-split JSON /canary_status <= 1 ms of "
             . 'worker CPU',
             $j && defined $j->{cpu_ms}
                 ? sprintf('%.3f ms (%s bytes, %s scrapes/s at wrk -c1; '
                           . 'Prometheus %.3f ms, %s scrapes/s)%s',
                           $j->{cpu_ms}, fmt_num($j->{bytes}),
                           fmt_num($j->{per_s}), $c->{prometheus}{cpu_ms},
                           fmt_num($c->{prometheus}{per_s}),
                           $g ? sprintf('; callgrind %s Ir, %.1f allocator '
                                        . 'and %.1f printf calls a scrape',
                                        fmt_num($g->{json}{ir}),
                                        $g->{json}{allocs},
                                        $g->{json}{printf}) : '')
                 : ($sc->{cpu_skipped} // 'n/a'),
             $j && defined $j->{cpu_ms} ? $j->{cpu_ms} <= 1 : undef];

        for my $f (qw(json prometheus)) {
            push @summary, sprintf('scrape %-10s %s bytes  %s scrapes/s  '
                                   . '%s ms CPU  %s Ir  %s allocator calls  '
                                   . '%s printf calls', $f,
                                   $c ? fmt_num($c->{$f}{bytes}) : 'n/a',
                                   $c ? fmt_num($c->{$f}{per_s}) : 'n/a',
                                   $c ? sprintf('%.3f', $c->{$f}{cpu_ms})
                                      : 'n/a',
                                   $g ? fmt_num($g->{$f}{ir}) : 'n/a',
                                   $g ? sprintf('%.1f', $g->{$f}{allocs})
                                      : 'n/a',
                                   $g ? sprintf('%.1f', $g->{$f}{printf})
                                      : 'n/a');
        }
    } else {
        push @sc_section, 'Not run.', '';
        push @targets, ['scrape: a 10-split JSON /canary_status <= 1 ms of '
                        . 'worker CPU', 'not run', undef];
    }

    # ---- assemble ----------------------------------------------------------

    push @md, '## Targets', '', '| target | measured | result |',
        '|---|---|---|';
    push @md, map { "| $_->[0] | $_->[1] | " . verdict($_->[2]) . ' |' }
              @targets;
    push @md, '';

    my @bad = (@{$res->{bad_log} || []},
               @{($res->{scrape} || {})->{bad_log} || []},
               @{($res->{propagation} || {})->{bad_log} || []},
               @{($res->{memory} || {})->{bad_log} || []},
               map { @{$_->{bad_log} || []} }
               map { @{($res->{rollback} || {})->{$_}{runs} || []} }
               qw(guard sidecar));

    if (@bad) {
        push @md, '**nginx logged [alert]/[crit]/[emerg] lines during the '
                  . 'run:**', '', '```', @bad[0 .. ($#bad > 19 ? 19 : $#bad)],
                  '```', '';
    }

    push @md, @tp_section, @cg_section, @pr_section, @rb_section,
              @mem_section, @sc_section;

    push @md, '## Files', '',
        '`throughput.csv` (every wrk run), `callgrind.csv`, '
        . '`callgrind-functions.csv` (per-function Ir per request, self and '
        . 'inclusive, every variant), `propagation.csv` (every write), '
        . '`rollback.csv` (every run), `memory.csv`, `scrape.csv`, '
        . '`results.png` (bench/plot.gp); `readme-targets.md`: the block '
        . 'README.md\'s "Figures" carries (`BENCH_README=1 bench/run` '
        . 'rewrites it there).', '';

    Bench::spew("$out/results.md", join("\n", @md));

    readme_block($res, \@targets, $out, $commit);

    plot($res, $out) unless $no_gnuplot;

    print "\n", join("\n", @summary), "\n\ntargets:\n";
    printf "  %-8s %s: %s\n", do { my $v = verdict($_->[2]); $v =~ tr/*//d;
                                   $v }, $_->[0], $_->[1] for @targets;
    print "\n";
}


# README.md's targets table ("Figures", between the markers): written to
# readme-targets.md, and into README.md itself with BENCH_README=1
sub readme_block {
    my ($res, $targets, $out, $commit) = @_;

    my $begin = '<!-- bench:targets begin: written by bench/run '
                . '(BENCH_README=1) from bench/results/results.md -->';
    my $end = '<!-- bench:targets end -->';

    my @b = ($begin,
        'By `make bench` (' . strftime('%Y-%m-%d %H:%M UTC', gmtime) . ', '
        . sprintf('%.0f', $res->{elapsed}) . " s, commit $commit; how "
        . 'each figure is measured: [`bench/README.md`](bench/README.md); '
        . 'every number: `bench/results/results.md`):', '',
        '| target | measured | result |', '|---|---|---|',
        (map { "| $_->[0] | $_->[1] | " . verdict($_->[2]) . ' |' }
         @$targets),
        $end);

    my $block = join("\n", @b) . "\n";

    Bench::spew("$out/readme-targets.md", $block);

    return unless $ENV{BENCH_README};

    my $path = "$Bench::ROOT/README.md";
    my $text = Bench::slurp($path) // die "bench: no $path\n";

    if ($text !~ s/^<!--\ bench:targets\ begin[^\n]*-->\n
                   .*?
                   ^<!--\ bench:targets\ end\ -->\n/$block/msx)
    {
        Bench::log_msg("README.md has no bench:targets markers: not "
                       . "rewritten (the block is in %s/readme-targets.md)",
                       $out);
        return;
    }

    Bench::spew($path, $text);
    Bench::log_msg("README.md: the targets block in \"Figures\" rewritten");
}


sub ms { defined $_[0] ? sprintf('%.1f', $_[0] * 1000) : '' }


sub sec {
    my ($s) = @_;

    return 'n/a' unless defined $s;
    return $s < 10 ? sprintf('%.0f ms', $s * 1000) : sprintf('%.1f s', $s);
}


# the largest entry points of the module's own instructions, for a target
sub own_top {
    my ($o) = @_;

    my $e = $o->{entries};
    my @f = grep { $e->{$_} >= 0.5 && $_ ne 'ngx_http_canary_tick' }
            sort { $e->{$b} <=> $e->{$a} } keys %$e;

    return join(', ', map { (my $n = $_) =~ s/^ngx_http_canary_//;
                            sprintf('%s %.0f', $n, $e->{$_}) } @f);
}


# the module's own instructions per request, entry point by entry point
sub own_breakdown {
    my ($p, $ids) = @_;

    my @md = ("### The module's own instructions per request", '',
        'What nginx spends inside the module: the inclusive Ir of every '
        . 'call arc from outside ngx_http_canary_module.so into one of its '
        . 'functions (its entry points: the preaccess handler, variable '
        . 'handlers, the balancer\'s init and get peer, filters, the log '
        . 'handler), with everything they call, nginx\'s and libc\'s '
        . 'functions included, read from the call graph in the callgrind '
        . 'data ((run 2N - run N) / N).  A call from inside the module to '
        . 'another of its functions is part of its caller\'s inclusive '
        . 'cost and is not an arc from outside, so nothing is counted '
        . 'twice, unless the module re-enters itself through nginx (an '
        . 'arc into the module from an nginx function the module also '
        . 'calls: listed as "nested" when it happens per request).  '
        . '`ngx_http_canary_tick`, a 100 ms timer, is left out: under '
        . 'valgrind a request takes ~100x longer, so its share here is '
        . '~100x what it is in production; it is given apart.  So is '
        . 'the call canary_balancer\'s init_peer makes to the chosen '
        . 'group\'s own balancer (keepalive, round robin): the plain '
        . 'proxy makes that call too.', '',
        '| variant | entry point (caller) | Ir/request |', '|---|---|---|');

    for my $id (@$ids) {
        my $x = $p->{$id} or next;
        my $o = $x->{own};
        my $arcs = $o->{arcs};

        for my $arc (grep { abs($arcs->{$_}) >= 0.5 }
                     sort { $arcs->{$b} <=> $arcs->{$a} } keys %$arcs)
        {
            my ($caller, $fn) = $arc =~ /^(.*) -> (.*)$/;
            push @md, sprintf('| (%s) | `%s` (from `%s`)%s | %.0f |', $id,
                              $fn, $caller,
                              $fn eq 'ngx_http_canary_tick'
                                  ? ' timer, left out' : '',
                              $arcs->{$arc});
        }

        my $dl = $o->{delegated} // {};

        for my $arc (grep { abs($dl->{$_}) >= 0.5 } sort keys %$dl) {
            push @md, sprintf('| (%s) | `%s`: the chosen group\'s own '
                              . 'balancer, which the plain proxy calls '
                              . 'too: left out | -%.0f |', $id, $arc,
                              $dl->{$arc});
        }

        my @nest = grep { abs($o->{nested}{$_}) >= 0.5 }
                   keys %{$o->{nested}};

        push @md, sprintf('| (%s) | **total, the module\'s own** (%s) | '
                          . '**%.0f** |', $id,
                          @nest ? 'nested: ' . join(', ', map { "`$_`" }
                                                    @nest)
                                : 'no nested entry',
                          $o->{own});
    }

    return @md;
}


sub alloc_text {
    my ($x, $b, $xid, $bid) = @_;

    my $d = $x->{allocs} - $b->{allocs};

    return sprintf('(%s) %.2f, (%s) %.2f: %s', $xid, $x->{allocs}, $bid,
                   $b->{allocs}, abs($d) < 0.05 ? 'equal'
                                : sprintf('differ by %+.2f', $d));
}


# the allocator's calls per request, each form beside its plain proxy
sub alloc_pairs {
    my ($p) = @_;

    my @md = ('### Allocator calls per request, side by side', '',
        'malloc + free + posix_memalign calls per request (from the '
        . 'callgrind data) and the Ir spent in glibc\'s allocator: the '
        . 'same calls cost a few hundred Ir more or less depending on the '
        . 'heap layout the configuration left, which is why the targets '
        . 'are given with and without malloc/free.', '',
        '| pair | calls per request | Ir in malloc/free | verdict |',
        '|---|---|---|---|');

    for my $pair ([qw(d f)], [qw(g a)], [qw(h i)]) {
        my ($x, $b) = @$pair;
        next unless $p->{$x} && $p->{$b};

        my $d = $p->{$x}{allocs} - $p->{$b}{allocs};

        push @md, sprintf('| (%s) vs (%s) | %.2f vs %.2f | %s vs %s | %s |',
                          $x, $b, $p->{$x}{allocs}, $p->{$b}{allocs},
                          fmt_num($p->{$x}{heap}), fmt_num($p->{$b}{heap}),
                          abs($d) < 0.05 ? 'equal'
                                         : sprintf('differ by %+.2f', $d));
    }

    return @md;
}


# where the module's instructions go: its own functions (inclusive and
# self) in variant $x, and the per-function difference with $base
sub analysis {
    my ($p, $x, $base) = @_;

    my $d = $p->{$x} or return ();
    my $f = $p->{$base};
    my @md;

    my $is_mod = sub {
        $_[0] =~ /^ngx_http_canary_|\[ngx_http_canary_module\.so\]$/;
    };

    my $incl = $d->{inclusive};
    my @mod = grep { $is_mod->($_) && $incl->{$_} >= 1 }
              sort { $incl->{$b} <=> $incl->{$a} } keys %$incl;

    push @md, "### Where the module's instructions go ($x)", '',
        "Functions of ngx_http_canary_module.so in ($x) $NAME{$x}, Ir per "
        . 'request, inclusive (with what they call) and self, from '
        . '`callgrind_annotate --inclusive=yes|no` of the same two runs '
        . '(`ngx_http_canary_tick` runs on a 100 ms timer, not per request: '
        . 'under valgrind a request takes ~100x longer, so its share here '
        . 'is ~100x what it is in production):', '',
        '| function | inclusive Ir/request | self Ir/request |',
        '|---|---|---|';

    for my $fn (@mod[0 .. ($#mod > 14 ? 14 : $#mod)]) {
        (my $name = $fn) =~ s/ \[.*//;
        push @md, sprintf('| `%s` | %.0f | %.0f |', $name, $incl->{$fn},
                          $d->{self}{$fn} // 0);
    }

    return @md unless $f;

    my %diff;
    my %keys = map { $_ => 1 } keys %{$d->{self}}, keys %{$f->{self}};

    for my $k (keys %keys) {
        my $v = ($d->{self}{$k} // 0) - ($f->{self}{$k} // 0);
        $diff{$k} = $v if abs($v) >= 5;
    }

    my @top = sort { abs($diff{$b}) <=> abs($diff{$a}) } keys %diff;

    push @md, '', sprintf('Self Ir per request, (%s) minus (%s) %s (total '
                          . '%+.0f), the largest differences:', $x, $base,
                          $NAME{$base}, $d->{ir} - $f->{ir}), '',
        "| function [object] | ($x) - ($base) Ir/request |", '|---|---|';

    for my $k (@top[0 .. ($#top > 19 ? 19 : $#top)]) {
        push @md, sprintf('| `%s` | %+.0f |', $k, $diff{$k});
    }

    return @md;
}


sub plot {
    my ($res, $out) = @_;

    my $dir = "$Bench::TMP/plot";
    my @labels;
    my $i = 0;

    my $tp = $res->{throughput};
    my $cg = $res->{callgrind};
    my $pr = $res->{propagation};
    my $rb = $res->{rollback};

    my (@tpd, @cgd);

    for my $v (@{$res->{variants}}) {
        next if $v->{pending};
        my $id = $v->{id};
        my $label = "($id) $v->{short}";

        if ($tp && (my $x = $tp->{summary}{$id})) {
            push @tpd, join(' ', scalar(@tpd), "\"$label\"", $x->{rps},
                            $x->{rps_min}, $x->{rps_max}, $x->{p50_us},
                            $x->{p99_us}, $x->{cpu_us});
        }

        if ($cg && (my $x = $cg->{per}{$id})) {
            push @cgd, join(' ', scalar(@cgd), "\"$label\"", $x->{ir});
        }
    }

    Bench::spew("$dir/throughput.dat", join("\n", @tpd, ''));
    Bench::spew("$dir/callgrind.dat", join("\n", @cgd, ''));

    for my $mode (qw(canary-ctl direct)) {
        my @p = $pr ? sort { $a <=> $b }
                      map { $_->{all_ms} }
                      grep { $_->{mode} eq $mode } @{$pr->{rows}}
                    : ();
        Bench::spew("$dir/propagation-$mode.dat",
                    join("\n", (map { sprintf('%.3f %.4f', $p[$_],
                                               ($_ + 1) / @p) } 0 .. $#p),
                         ''));
    }

    my @rbd;
    for my $path (qw(guard sidecar)) {
        my $k = $path eq 'guard' ? 0 : 1;
        for my $r (@{(($rb || {})->{$path} || {})->{runs} || []}) {
            push @rbd, sprintf('%d %.3f', $k, $r->{last_canary_s})
                if defined $r->{last_canary_s};
        }
    }
    Bench::spew("$dir/rollback.dat", join("\n", @rbd, ''));

    my $have = ($tp ? 't' : '') . ($cg ? 'c' : '') . ($pr ? 'p' : '')
               . (@rbd ? 'r' : '');

    my ($rc, $text) = Bench::run_cmd(['gnuplot', '-e',
                                      "dir='$dir'; out='$out/results.png'; "
                                      . "have='$have'",
                                      "$Bench::BENCH/plot.gp"],
                                     name => 'gnuplot');

    Bench::log_msg("gnuplot failed:\n%s", $text) if $rc;
}


1;
