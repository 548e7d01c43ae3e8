package Scrape;

# 7. The cost of a /canary_status scrape (issue 21): nginx (1 worker) with
# 10 splits (weights, cohorts, overrides, a cookie, guards), traffic
# through every split so that counters and histograms are filled, then
#
#   - wrk -t1 -c1 on ?format=json, then on ?format=prometheus, for
#     BENCH_SCRAPE_SECONDS each: the worker's user+system CPU time
#     (/proc/PID/stat) over the scrapes wrk counted, and scrapes/s;
#     worker on CPU 0 and wrk on CPU 1 when the machine allows;
#   - callgrind, nginx in single-process mode: the same traffic, then N
#     or 2N scrapes; per scrape = (run 2N - run N) / N: instructions
#     (ngx_http_canary_tick, a 100 ms timer, left out), allocator calls
#     (malloc, free, posix_memalign) and calls of libc's printf family
#     from outside libc.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

use Bench;
use Callgrind;

our $SPLITS = 10;

my @FORMATS = (['json', '/canary_status?format=json'],
               ['prometheus', '/canary_status?format=prometheus']);


# split i of 10: a mix of what operators configure
sub split_block {
    my ($i) = @_;

    my @w = (5, 20, 50, 1, 10, 25, 2, 30, 15, 40);
    my $b = sprintf("    canary_split s%02d {\n", $i)
            . "        stable stable;\n        canary canary;\n"
            . "        weight $w[$i - 1];\n";

    $b .= "        override X-Canary-Opt-In true canary;\n"
          . "        override X-Summit-Employee true canary "
          . "from=10.0.0.0/8;\n        cookie canary;\n" if $i % 2;
    $b .= "        cohort \$http_x_cohort;\n        cohort_weight gold 50;\n"
          . "        cohort_weight beta 100;\n" if $i % 3 == 0;
    $b .= "        guard error_rate=50 min_requests=20 window=10s;\n"
        if $i % 4 == 0;
    $b .= "        guard latency_p99=5s window=30s;\n" if $i % 4 == 2;

    return "$b    }\n";
}


sub conf_http {
    my ($cfg, $port) = @_;

    my $loc = join('', map { sprintf("        location /s%02d/ {\n"
                                     . "            canary s%02d;\n"
                                     . "            proxy_pass "
                                     . "http://\$canary_upstream;\n"
                                     . "        }\n\n", $_, $_) }
                       1 .. $SPLITS);

    return Bench::template('scrape.conf',
        UPSTREAMS => Bench::template('upstreams.conf',
                         STABLE_PORT => $cfg->{origins}{stable},
                         CANARY_PORT => $cfg->{origins}{canary}),
        ZONE_SIZE => '8m',
        SPLITS    => join("\n", map { split_block($_) } 1 .. $SPLITS),
        LOCATIONS => $loc,
        PORT      => $port);
}


# $n requests over one keep-alive connection, spread over every split,
# tenants, a few cohorts and overrides
sub traffic {
    my ($port, $n) = @_;

    my $s = Bench::connect_tcp($port) or die "bench: connect $port: $!\n";
    my $buf = '';
    my %sides;

    for my $i (1 .. $n) {
        my @h = ('X-Tenant-Id' => sprintf('tenant-%05d', $i));

        push @h, 'X-Cohort' => ($i % 3 ? 'gold' : 'beta') if $i % 7 == 0;
        push @h, 'X-Canary-Opt-In' => 'true' if $i % 50 == 0;

        my $path = sprintf('/s%02d/', 1 + $i % $SPLITS);

        syswrite($s, Bench::http_request_text($path, \@h));

        my $r = Bench::read_response($s, \$buf, 60)
            or die "bench: scrape traffic: no response to request $i\n";
        die "bench: scrape traffic: $path answered $r->{status}\n"
            unless $r->{status} == 200;

        $sides{$r->{body} =~ /^(\w+)/ ? $1 : '?'}++;
    }

    close $s;

    return \%sides;
}


sub dechunk {
    my ($r) = @_;

    my $body = $r->{body};

    return $body unless ($r->{headers}{'transfer-encoding'} // '')
                        =~ /chunked/i;

    my $out = '';

    while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $len = hex $1;
        last unless $len;
        $out .= substr($body, 0, $len, '');
        $body =~ s/^\r\n//;
    }

    return $out;
}


# N scrapes, one at a time, over one keep-alive connection
sub scrapes {
    my ($port, $path, $n) = @_;

    my $s = Bench::connect_tcp($port) or die "bench: connect $port: $!\n";
    my $buf = '';

    for my $i (1 .. $n) {
        syswrite($s, Bench::http_request_text($path, []));
        my $r = Bench::read_response($s, \$buf, 120)
            or die "bench: no answer to scrape $i of $path\n";
        die "bench: $path answered $r->{status}\n" unless $r->{status} == 200;
    }

    close $s;
}


sub run_wrk {
    my ($cfg, $port, $path, $cpus) = @_;

    my ($rc, $out) = Bench::run_cmd(['wrk', '-t1', '-c1',
                                     "-d$cfg->{scrape_seconds}s",
                                     '--timeout', '5s',
                                     "http://127.0.0.1:$port$path"],
                                    name => 'wrk', cpus => $cpus);

    my ($n, $secs) = $out =~ /(\d+) requests in ([\d.]+)(m?s)/
        or die "bench: wrk failed (exit $rc):\n$out\n";
    $secs /= 1000 if $out =~ /\d+ requests in [\d.]+ms/;

    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    my ($errs) = $out =~ /Socket errors: (.*)/;

    die "bench: wrk on $path: $non2xx non-2xx answers\n" if $non2xx;

    return { requests => $n, seconds => $secs, errors => $errs };
}


sub measure_cpu {
    my ($cfg, $tmp) = @_;

    my $port = Bench::port();
    my $pin = $cfg->{can_pin};

    my $ngx = Bench::nginx(
        name    => 'scrape',
        workers => 1,
        ports   => [$port],
        cpus    => $pin ? '0' : '',
        conf    => Bench::main_conf(dir => "$tmp/scrape",
                                    modules => [$cfg->{module}],
                                    http => conf_http($cfg, $port)))
        ->start;

    my $sides = traffic($port, $cfg->{scrape_traffic});
    my ($worker) = $ngx->worker_pids;
    my %r = (sides => $sides, pinned => $pin ? 1 : 0);

    for my $f (@FORMATS) {
        my ($name, $path) = @$f;

        my $body = dechunk(Bench::http_get($port, $path, [], 10)
                           // die "bench: no answer to $path\n");

        # warm-up: the worker's pool and page faults
        run_wrk({ %$cfg, scrape_seconds => 1 }, $port, $path,
                $pin ? '1' : '');

        my $c0 = Bench::cpu_seconds($worker);
        my $w = run_wrk($cfg, $port, $path, $pin ? '1' : '');
        my $c1 = Bench::cpu_seconds($worker);

        $r{$name} = { bytes => length $body, scrapes => $w->{requests},
                      seconds => $w->{seconds},
                      per_s => $w->{requests} / $w->{seconds},
                      cpu_ms => $w->{requests}
                                ? ($c1 - $c0) * 1000 / $w->{requests}
                                : undef,
                      util => ($c1 - $c0) / $w->{seconds},
                      errors => $w->{errors},
                      command => "wrk -t1 -c1 -d$cfg->{scrape_seconds}s "
                                 . "http://127.0.0.1:PORT$path" };

        Bench::log_msg("  %-10s %8d bytes  %6.0f scrapes/s  %.3f ms of "
                       . "worker CPU per scrape (busy %.0f%%)", $name,
                       $r{$name}{bytes}, $r{$name}{per_s},
                       $r{$name}{cpu_ms} // -1, 100 * $r{$name}{util});
    }

    $r{bad_log} = [map { "scrape: $_" } $ngx->bad_log_lines];
    $ngx->stop;

    return \%r;
}


sub cg_run {
    my ($cfg, $tmp, $name, $path, $n) = @_;

    my $tag = "cg-scrape-$name-$n";
    my $dir = "$tmp/$tag";
    my $out = "$dir/callgrind.out";
    my $port = Bench::port();

    my $ngx = Bench::nginx(
        name  => $tag,
        ports => [$port],
        conf  => Bench::main_conf(dir => $dir, single => 1,
                                  modules => [$cfg->{module}],
                                  http => conf_http($cfg, $port)));

    $ngx->start(wrap => [Callgrind::valgrind_cmd($out)], timeout => 120);

    traffic($port, $cfg->{scrape_cg_traffic});
    scrapes($port, $path, $n);

    kill 'QUIT', $ngx->pid;

    my $deadline = time + 120;

    while (Bench::alive($ngx->pid) && time < $deadline) {
        my $c = Bench::connect_tcp($port);
        close $c if $c;
        sleep 0.2;
    }

    $ngx->stop('TERM', 5);

    my $text = Bench::slurp($out) // die "bench: callgrind wrote no $out\n";
    my ($ir) = $text =~ /^totals:\s+(\d+)/m;
    ($ir) = $text =~ /^summary:\s+(\d+)/m unless defined $ir;
    die "bench: no totals in $out\n" unless defined $ir;

    my $g = Callgrind::call_graph($out);

    return { ir => $ir, g => $g, out => $out };
}


sub measure_cg {
    my ($cfg, $tmp) = @_;

    my $n = $cfg->{scrape_cg};
    my %r = (n => $n, traffic => $cfg->{scrape_cg_traffic});

    for my $f (@FORMATS) {
        my ($name, $path) = @$f;
        my $t0 = time;

        my $r1 = cg_run($cfg, $tmp, $name, $path, $n);
        my $r2 = cg_run($cfg, $tmp, $name, $path, 2 * $n);

        my $tick = (($r2->{g}{entries}{ngx_http_canary_tick} // 0)
                    - ($r1->{g}{entries}{ngx_http_canary_tick} // 0)) / $n;

        $r{$name} = {
            ir     => ($r2->{ir} - $r1->{ir}) / $n - $tick,
            tick   => $tick,
            allocs => ($r2->{g}{alloc_calls} - $r1->{g}{alloc_calls}) / $n,
            printf => ($r2->{g}{printf_calls} - $r1->{g}{printf_calls})
                      / $n,
        };

        Bench::log_msg("  callgrind %-10s %12.0f Ir per scrape, %7.1f "
                       . "allocator calls, %7.1f printf calls (timer %.0f "
                       . "Ir left out; %.0fs)", $name, $r{$name}{ir},
                       $r{$name}{allocs}, $r{$name}{printf}, $tick,
                       time - $t0);
    }

    $r{command} = 'valgrind --tool=callgrind --dump-instr=no '
                  . '--collect-jumps=no nginx (master_process off); '
                  . "$cfg->{scrape_cg_traffic} requests through the "
                  . "$SPLITS splits, then N or 2N scrapes on one "
                  . 'keep-alive connection; (run 2N - run N) / N, '
                  . "N = $n";

    return \%r;
}


sub run {
    my ($cfg, $tmp, $missing) = @_;

    $cfg->{scrape_cg_traffic} //= $cfg->{scrape_traffic} < 500
                                  ? $cfg->{scrape_traffic} : 500;

    my %res = (splits => $SPLITS, traffic => $cfg->{scrape_traffic},
               seconds => $cfg->{scrape_seconds});

    Bench::log_msg("scrape: %d splits, %d requests through them, then "
                   . "wrk -c1 on /canary_status for %ds per format",
                   $SPLITS, $cfg->{scrape_traffic}, $cfg->{scrape_seconds});

    if ($missing->{wrk}) {
        $res{cpu_skipped} = 'wrk not installed';
    } else {
        $res{cpu} = measure_cpu($cfg, $tmp);
        $res{bad_log} = delete $res{cpu}{bad_log};
    }

    if ($missing->{valgrind}) {
        $res{cg_skipped} = 'valgrind not installed';
    } elsif ($cfg->{scrape_cg}) {
        $res{cg} = measure_cg($cfg, $tmp);
    }

    return \%res;
}


1;
