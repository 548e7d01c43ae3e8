package Callgrind;

# 2. Instructions per request, deterministic: nginx in single-process mode
# (master_process off; daemon off) under valgrind --tool=callgrind, one
# keep-alive client sending W warm-up requests then N (or 2N) requests of
# the same mix, one at a time.  Ir(2N run) - Ir(N run), divided by N,
# cancels start-up, warm-up and exit.  Per-function figures come from
# callgrind_annotate of the same two runs, subtracted the same way.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

use Bench;


sub valgrind_cmd {
    my ($out) = @_;

    return ('valgrind', '--tool=callgrind', "--callgrind-out-file=$out",
            '--dump-instr=no', '--collect-jumps=no');
}


# one run: returns { ir => total Ir, out => file, bad => non-200 count }
sub one_run {
    my ($cfg, $v, $tmp, $n, $rep) = @_;

    my $name = "cg-$v->{id}-$n" . ($rep > 1 ? "-$rep" : '');
    my $dir = "$tmp/$name";
    my $out = "$dir/callgrind.out";

    my $ngx = Bench::nginx(
        name  => $name,
        ports => [$v->{port}],
        conf  => $v->{conf_text}->(dir => $dir, single => 1));

    my $t0 = time;
    $ngx->start(wrap => [valgrind_cmd($out)], timeout => 120);
    my $t1 = time;

    my $total = $cfg->{cg_warmup} + $n;
    my ($ok, $bad) = seq_requests($v->{port}, $v->{mix} || $cfg->{mix},
                                  $total);
    my $t2 = time;

    # Under valgrind a signal is seen only when epoll_wait returns, and
    # with no timer due that can be a minute: a connection wakes it.
    # Both runs do the same, so it cancels out.
    kill 'QUIT', $ngx->pid;

    my $deadline = time + 120;

    while (Bench::alive($ngx->pid) && time < $deadline) {
        my $c = Bench::connect_tcp($v->{port});
        close $c if $c;
        sleep 0.2;
    }

    $ngx->stop('TERM', 5);

    Bench::debug("  callgrind %s %d: start %.1fs, requests %.1fs, stop %.1fs",
                 $v->{id}, $n, $t1 - $t0, $t2 - $t1, time - $t2);

    my $text = Bench::slurp($out) // die "bench: callgrind wrote no $out\n";
    my ($ir) = $text =~ /^totals:\s+(\d+)/m;
    ($ir) = $text =~ /^summary:\s+(\d+)/m unless defined $ir;

    die "bench: no totals in $out\n" unless defined $ir;

    return { ir => $ir, out => $out, ok => $ok, bad => $bad,
             conf => $ngx->conf_path };
}


# one keep-alive connection, one request at a time, the mix in order
sub seq_requests {
    my ($port, $mix, $count) = @_;

    my ($ok, $bad) = (0, 0);
    my $s = Bench::connect_tcp($port) or die "bench: connect $port: $!\n";
    my $buf = '';

    for my $i (0 .. $count - 1) {
        my $h = $mix->[$i % @$mix];

        syswrite($s, Bench::http_request_text('/', $h));

        my $r = Bench::read_response($s, \$buf, 60)
            or die "bench: no response to request $i on port $port\n";

        $r->{status} == 200 ? $ok++ : $bad++;
    }

    close $s;

    return ($ok, $bad);
}


# { "function [object]" => Ir } from callgrind_annotate.  It lists one
# function under several file names (the build path, the absolute path,
# "???"), some lines without the object: self costs of those add up,
# while for inclusive costs the largest line is the whole.
sub functions {
    my ($out, $inclusive) = @_;

    my ($rc, $text) = Bench::run_cmd(['callgrind_annotate',
                                      '--inclusive=' . ($inclusive ? 'yes'
                                                                   : 'no'),
                                      '--threshold=100', $out],
                                     name => 'callgrind_annotate');

    my (%ir, %obj);

    for my $line (split /\n/, $text) {
        next unless $line =~ /^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?
                               \S*?:(\S+)(?:\s+\[(.*)\])?\s*$/x;
        my ($ir, $fn, $o) = ($1, $2, $3);
        $ir =~ tr/,//d;

        next if $fn =~ /^(?:\(below main\)|main)$/ && !$o;

        if (defined $o) {
            $o =~ s{.*/}{};
            $obj{$fn} //= $o;
        }

        if ($inclusive) {
            $ir{$fn} = $ir if !defined $ir{$fn} || $ir > $ir{$fn};
        } else {
            $ir{$fn} += $ir;
        }
    }

    return { map { ("$_ [" . ($obj{$_} // '?') . ']' => $ir{$_}) }
             keys %ir };
}


# calls of the allocator's entry points, from the callgrind data itself
sub alloc_calls {
    my ($out) = @_;

    return call_graph($out)->{alloc_calls};
}


# What the call arcs of a callgrind output say (one pass over the file):
#
#   entries:      { module function => inclusive Ir of the arcs into it
#                   from outside ngx_http_canary_module.so }: what nginx
#                   spends in the module's entry points, with everything
#                   they call;
#   nested:       { "caller -> callee" => Ir } arcs into the module whose
#                   caller outside it is also called from the module: a
#                   possible nested entry (counted twice if it is one);
#   alloc_calls:  calls of malloc, free and posix_memalign;
#   printf_calls: calls from outside libc into libc's printf family
#                 (snprintf, vsnprintf, ...: one per formatted string).
#
# Format: "ob=", "fn=", "cob=", "cfn=" name an object or a function,
# "(id) name" the first time and "(id)" after; "calls=N ..." is followed
# by one cost line, "position Ir", the inclusive cost of those calls.
sub call_graph {
    my ($out) = @_;

    open my $fh, '<', $out or die "bench: $out: $!\n";

    my (%oname, %fname, $ob, $fn, $cob, $cfn, $pending, %g);
    my (%entries, %arcs, %from_mod, %delegated);

    $g{alloc_calls} = 0;
    $g{printf_calls} = 0;

    my $is_mod = sub { ($_[0] // '') =~ /ngx_http_canary_module\.so$/ };
    my $is_libc = sub { ($_[0] // '') =~ m{/libc[.-][^/]*$} };

    while (my $line = <$fh>) {
        if ($pending) {
            my ($n, $callee, $cobj) = @$pending;
            $pending = undef;

            my ($ir) = $line =~ /^\S+\s+(\d+)/ or next;
            my $caller = $fname{$fn} // '?';
            my $cname = $fname{$callee} // '?';
            my $from = $oname{$ob // ''};
            my $to = $oname{$cobj // ''};

            $g{alloc_calls} += $n
                if $cname =~ /^(?:malloc|free|posix_memalign)$/;
            $g{printf_calls} += $n
                if $cname =~ /printf/ && $is_libc->($to)
                   && !$is_libc->($from);

            if ($is_mod->($to) && !$is_mod->($from)) {
                $entries{$cname} += $ir;
                $arcs{"$caller -> $cname"} += $ir;
            }

            if ($is_mod->($from) && !$is_mod->($to)) {
                $from_mod{$cname} = 1;

                # canary_balancer hands the request to the chosen group's
                # own balancer (group->peer.init): the plain proxy makes
                # that call too, from ngx_http_upstream_init_request
                $delegated{"$caller -> $cname"} += $ir
                    if $caller eq 'ngx_http_canary_balancer_init_peer';
            }

            next;
        }

        if ($line =~ /^(c?)(ob|fn)=\((\d+)\)(?: (.*?))?\s*$/) {
            my ($c, $kind, $id, $name) = ($1, $2, $3, $4);
            my $names = $kind eq 'ob' ? \%oname : \%fname;

            $names->{$id} = $name if defined $name;

            if ($kind eq 'ob') {
                $c ? ($cob = $id) : ($ob = $id, $cob = undef);
            } else {
                $c ? ($cfn = $id) : ($fn = $id, $cob = undef);
            }
            next;
        }

        if ($line =~ /^calls=(\d+)/) {
            $pending = [$1, $cfn, $cob // $ob];
            $cob = undef;
        }
    }

    close $fh;

    my %nested;

    for my $arc (keys %arcs) {
        my ($caller) = $arc =~ /^(.*) -> /;
        $nested{$arc} = $arcs{$arc} if $from_mod{$caller};
    }

    $g{entries} = \%entries;
    $g{arcs} = \%arcs;
    $g{nested} = \%nested;
    $g{delegated} = \%delegated;

    return \%g;
}


# $big minus $small, per request (each a hash of numbers)
sub diff_per {
    my ($small, $big, $n) = @_;

    my %d;

    for my $k (keys %$big) {
        $d{$k} = ($big->{$k} - ($small->{$k} // 0)) / $n;
    }

    return \%d;
}


# The module's own instructions per request: the inclusive Ir of every
# arc from nginx (or anything outside the module) into the module, i.e.
# its entry points (phase handlers, variable handlers, balancer, filters,
# the log handler) with what they call, nginx's functions included; an
# entry point is counted once per call from outside, so nothing is
# counted twice unless the module calls back into itself through nginx
# ("nested", printed).  ngx_http_canary_tick (a 100 ms timer, ~100x its
# production share under valgrind) is left out and given apart, and so
# is the chosen group's own balancer that canary_balancer's init_peer
# calls ("delegated": the plain proxy calls it too).
sub module_own {
    my ($g1, $g2, $n) = @_;

    my $e = diff_per($g1->{entries}, $g2->{entries}, $n);
    my $arcs = diff_per($g1->{arcs}, $g2->{arcs}, $n);
    my $nested = diff_per($g1->{nested}, $g2->{nested}, $n);
    my $delegated = diff_per($g1->{delegated} // {},
                             $g2->{delegated} // {}, $n);
    my ($own, $timer, $deleg) = (0, 0, 0);

    for my $f (keys %$e) {
        if ($f =~ /^ngx_http_canary_tick$/) {
            $timer += $e->{$f};
        } else {
            $own += $e->{$f};
        }
    }

    # what the chosen group's balancer does is nginx's, not the module's
    $deleg += $_ for values %$delegated;
    $own -= $deleg;

    my $nest = 0;
    $nest += $_ for values %$nested;

    return { own => $own, timer => $timer, entries => $e, arcs => $arcs,
             nested => $nested, nested_ir => $nest,
             delegated => $delegated, delegated_ir => $deleg };
}


sub per_request {
    my ($small, $big, $n) = @_;

    my %d;

    for my $k (keys %$big) {
        my $v = ($big->{$k} - ($small->{$k} // 0)) / $n;
        $d{$k} = $v if abs($v) >= 0.5;
    }

    return \%d;
}


sub run {
    my ($cfg, $variants, $tmp) = @_;

    my $n = $cfg->{cg_requests};
    my %res;

    Bench::log_msg("callgrind: %d variants, %d warm-up + %d and + %d "
                   . "requests each", scalar(@$variants), $cfg->{cg_warmup},
                   $n, 2 * $n);

    for my $v (@$variants) {
        my $t0 = time;
        my @pairs;

        # LuaJIT's traces differ from run to run: the median of 3 pairs
        for my $rep (1 .. ($v->{cg_repeat} || 1)) {
            my $r1 = one_run($cfg, $v, $tmp, $n, $rep);
            my $r2 = one_run($cfg, $v, $tmp, 2 * $n, $rep);

            die "bench: callgrind $v->{id}: non-200 responses\n"
                if $r1->{bad} || $r2->{bad};

            push @pairs, [$r1, $r2, ($r2->{ir} - $r1->{ir}) / $n];
        }

        @pairs = sort { $a->[2] <=> $b->[2] } @pairs;
        my ($r1, $r2, $per) = @{$pairs[$#pairs / 2]};

        my $self = per_request(functions($r1->{out}, 0),
                               functions($r2->{out}, 0), $n);
        my $incl = per_request(functions($r1->{out}, 1),
                               functions($r2->{out}, 1), $n);

        # glibc's allocator: every variant makes the same calls per
        # request, but what each costs depends on the heap's layout
        my $heap = 0;
        for my $f (keys %$self) {
            $heap += $self->{$f}
                if $f =~ /^(?:_int_malloc|_int_free|malloc|free|
                              unlink_chunk\S*|malloc_consolidate|
                              posix_memalign|_mid_memalign\S*|
                              alloc_perturb|tcache\S*|int_mallinfo)
                          \s\[libc\.so\.6\]$/x;
        }

        my $g1 = call_graph($r1->{out});
        my $g2 = call_graph($r2->{out});
        my $allocs = ($g2->{alloc_calls} - $g1->{alloc_calls}) / $n;
        my $own = module_own($g1, $g2, $n);

        $res{$v->{id}} = { ir => $per, heap => $heap, allocs => $allocs,
                           own => $own,
                           all => [map { $_->[2] } @pairs],
                           ir_n => $r1->{ir},
                           ir_2n => $r2->{ir}, self => $self,
                           inclusive => $incl, out_n => $r1->{out},
                           out_2n => $r2->{out} };

        Bench::log_msg("  %-2s %-40s %8.0f Ir/request, %5.0f of them in "
                       . "malloc/free (%.2f calls), module's own %.0f  "
                       . "(%.0fs)", $v->{id}, $v->{name}, $per, $heap,
                       $allocs, $own->{own}, time - $t0);
    }

    return { n => $n, warmup => $cfg->{cg_warmup}, per => \%res,
             command => 'valgrind --tool=callgrind --dump-instr=no '
                        . '--collect-jumps=no nginx (master_process off; '
                        . 'daemon off); one keep-alive client, '
                        . "$cfg->{cg_warmup} + N requests; "
                        . '(Ir(2N) - Ir(N)) / N, '
                        . "N = $n" };
}


1;
