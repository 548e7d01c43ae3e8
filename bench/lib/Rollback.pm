package Rollback;

# 4. Rollback: steady traffic (paced keep-alive clients, tenants only),
# then the canary origin starts answering 500 (bench/run creates the
# origins' fault file).  Every response is recorded with the time it
# arrived and the origin that served it (the body: "stable", "canary" or
# "canary fault"); the rollback time is the last response from the canary
# origin minus the moment the fault was switched on.
#
#   guard:   bench/rollback-guard.conf, fresh nginx (2 workers) per run
#   sidecar: bench/rollback-sidecar.conf, fresh redis-server, nginx and
#            build/canary-sidecar (default plan and settings) per run; the
#            sidecar starts the rollout, an operator sets 20% with
#            canary-ctl (the sidecar re-anchors at the 20_percent stage),
#            then the fault.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

use Bench;


my $CLIENTS = 4;
my $WORKERS = 2;


# paced clients; returns { pids, files, stop }
sub start_load {
    my ($cfg, $tmp, $port, $tag) = @_;

    my $rate = $cfg->{rollback_rate};
    my $stop = "$tmp/$tag.stop";
    my $mix = Bench::request_mix(3000, 1);
    my (@pids, @files);

    unlink $stop;

    for my $c (1 .. $CLIENTS) {
        my $file = "$tmp/$tag.load-$c";
        push @files, $file;

        push @pids, Bench::fork_code("load $tag $c", sub {
            open my $fh, '>', $file or die "$file: $!\n";
            my $interval = $CLIENTS / $rate;
            my $deadline = time + 120;
            my ($s, $buf, $i) = (undef, '', $c * 701);
            my $next = time;

            while (!-e $stop && time < $deadline) {
                $s ||= Bench::connect_tcp($port);
                $buf = '' unless $s;

                my $sent = time;
                my $r;

                if ($s) {
                    syswrite($s, Bench::http_request_text(
                                     '/', $mix->[$i++ % @$mix]));
                    $r = Bench::read_response($s, \$buf, 5);
                }

                my $got = time;

                if ($r) {
                    my ($side) = $r->{body} =~ /^(\w+)/;
                    printf $fh "%.6f %.6f %d %s\n", $sent, $got,
                           $r->{status}, $side // '-';
                } else {
                    printf $fh "%.6f %.6f 0 -\n", $sent, $got;
                    undef $s;
                    sleep 0.01;
                }

                $next += $interval;
                my $d = $next - time;
                if ($d > 0) {
                    sleep $d;
                } elsif ($d < -1) {
                    $next = time;
                }
            }

            close $fh;
        });
    }

    return { pids => \@pids, files => \@files, stop => $stop };
}


# stops the clients; returns the records sorted by arrival
sub stop_load {
    my ($load) = @_;

    Bench::spew($load->{stop}, '');

    for my $pid (@{$load->{pids}}) {
        my $deadline = time + 10;
        sleep 0.02 while Bench::alive($pid) && time < $deadline;
        Bench::stop_proc($pid, 'TERM', 2);
    }

    my @rec;

    for my $f (@{$load->{files}}) {
        open my $fh, '<', $f or next;
        while (<$fh>) {
            my ($sent, $got, $status, $side) = split;
            push @rec, [$sent, $got, $status, $side];
        }
        close $fh;
        unlink $f;
    }

    return [sort { $a->[1] <=> $b->[1] } @rec];
}


sub status_json {
    my ($port) = @_;

    my $r = Bench::http_get($port, '/canary_status?format=json', [], 2);

    return $r && $r->{status} == 200 ? $r->{body} : '';
}


sub wait_until {
    my ($seconds, $cond) = @_;

    my $t0 = time;

    until ($cond->()) {
        return undef if time - $t0 > $seconds;
        sleep 0.02;
    }

    return time - $t0;
}


# the figures of one run from its records
sub measure {
    my ($rec, $t_fault) = @_;

    my @canary = grep { $_->[3] eq 'canary' } @$rec;
    my @fails = grep { $_->[1] >= $t_fault && $_->[2] >= 500 } @$rec;
    my @after = grep { $_->[1] >= $t_fault } @$rec;
    my $last = @canary ? $canary[-1][1] : undef;

    return {
        requests        => scalar(@$rec),
        canary_before   => scalar(grep { $_->[1] < $t_fault } @canary),
        failed          => scalar(@fails),
        last_canary_s   => defined $last ? $last - $t_fault : undef,
        first_fail_s    => @fails ? $fails[0][1] - $t_fault : undef,
        exposure_s      => defined $last && @fails
                           ? $last - $fails[0][1] : undef,
        after           => scalar(grep { defined $last && $_->[1] > $last }
                                  @after),
    };
}


sub proxy_nginx {
    my ($cfg, $tmp, $tag, $template, %vars) = @_;

    my $port = Bench::port();
    my $up = Bench::template('upstreams.conf',
                             STABLE_PORT => $cfg->{origins}{stable},
                             CANARY_PORT => $cfg->{origins}{canary});

    my $ngx = Bench::nginx(
        name    => $tag,
        workers => $WORKERS,
        ports   => [$port],
        conf    => Bench::main_conf(
            dir     => "$tmp/$tag",
            workers => $WORKERS,
            modules => [$cfg->{module}],
            http    => Bench::template($template, UPSTREAMS => $up,
                                       PORT => $port, %vars)));

    $ngx->{port} = $port;

    return $ngx->start;
}


sub guard_run {
    my ($cfg, $tmp, $i) = @_;

    my $fault = $cfg->{origins}{fault};
    unlink $fault;

    my $ngx = proxy_nginx($cfg, $tmp, "guard-$i", 'rollback-guard.conf');
    my $port = $ngx->{port};
    my $load = start_load($cfg, $tmp, $port, "guard-$i");

    sleep $cfg->{rollback_healthy};

    my $t_fault = time;
    Bench::spew($fault, '');

    my $tripped = wait_until(10, sub {
        status_json($port) =~ /"tripped":true/ });

    sleep 1;

    my $rec = stop_load($load);
    unlink $fault;

    my $m = measure($rec, $t_fault);
    $m->{tripped_s} = $tripped;
    $m->{run} = $i;
    $m->{bad_log} = [$ngx->bad_log_lines];

    $ngx->stop;

    return $m;
}


sub redis_hget {
    my ($redis, $key, $field) = @_;

    my (undef, $out) = Bench::redis_cli($redis->{port}, 'HGET', $key,
                                        $field);
    chomp $out;

    return $out;
}


sub sidecar_run {
    my ($cfg, $tmp, $i) = @_;

    my $fault = $cfg->{origins}{fault};
    unlink $fault;

    my $redis = Bench::redis_start("redis-sidecar-$i");
    my $ngx = proxy_nginx($cfg, $tmp, "sidecar-$i", 'rollback-sidecar.conf',
                          REDIS_PORT => $redis->{port});
    my $port = $ngx->{port};
    my $raddr = "127.0.0.1:$redis->{port}";

    wait_until(10, sub { status_json($port) =~ /"connected":true/ })
        // die "bench: nginx never connected to Redis\n";

    my $load = start_load($cfg, $tmp, $port, "sidecar-$i");
    my $log = "$tmp/sidecar-$i.log";

    my $sc = Bench::spawn("canary-sidecar $i",
                          [$cfg->{sidecar}, '--redis', $raddr, '--split',
                           'app', '--status',
                           "http://127.0.0.1:$port/canary_status",
                           '--id', "bench-$i", '--receipts',
                           "$tmp/sidecar-$i.receipts"], out => $log);

    my $fail = sub {
        my ($what) = @_;
        stop_load($load);
        die "bench: sidecar run $i: $what\n--- sidecar log:\n"
            . (Bench::slurp($log) // '') . "\n";
    };

    wait_until(15, sub { redis_hget($redis, 'canary:app', 'state')
                         eq 'running' })
        // $fail->('the sidecar did not start the rollout');

    # the operator's weight: the sidecar re-anchors at the 20% stage
    my ($rc, $out) = Bench::run_cmd([$cfg->{ctl}, '--redis', $raddr,
                                     'set-weight', 'app', '20'],
                                    name => 'canary-ctl');
    $fail->("canary-ctl set-weight failed: $out") if $rc;

    wait_until(15, sub { redis_hget($redis, 'canary:app:sidecar',
                                    'stage_name') eq '20_percent' })
        // $fail->('the sidecar did not re-anchor at 20_percent');

    sleep $cfg->{rollback_healthy} + 1;

    my $t_fault = time;
    Bench::spew($fault, '');

    my $zero = wait_until(30, sub { redis_hget($redis, 'canary:app',
                                               'weight') eq '0' });

    sleep 1;

    my $rec = stop_load($load);
    unlink $fault;

    my $m = measure($rec, $t_fault);
    $m->{weight0_s} = $zero;
    $m->{run} = $i;
    $m->{state} = redis_hget($redis, 'canary:app', 'state');
    $m->{bad_log} = [$ngx->bad_log_lines];

    Bench::stop_proc($sc, 'TERM', 5);
    $ngx->stop;
    Bench::redis_stop($redis);

    $fail->('no rollback within 30s') unless defined $zero;

    return $m;
}


sub summarize {
    my (@runs) = @_;

    my @done = grep { defined $_->{last_canary_s} } @runs;

    return {
        runs         => \@runs,
        median_s     => Bench::median(map { $_->{last_canary_s} } @done),
        max_s        => (Bench::min_max(map { $_->{last_canary_s} } @done))[1],
        exposure_s   => Bench::median(map { $_->{exposure_s} } @done),
        failed       => Bench::median(map { $_->{failed} } @done),
    };
}


sub run {
    my ($cfg, $tmp, $missing) = @_;

    $cfg->{rollback_rate} //= $ENV{BENCH_ROLLBACK_RATE} || 800;
    $cfg->{rollback_healthy} //= 2;

    my %r;

    Bench::log_msg("rollback: %d guard runs, %d sidecar runs, %d req/s from "
                   . "%d clients, 20%% on canary", $cfg->{guard_runs},
                   $cfg->{sidecar_runs}, $cfg->{rollback_rate}, $CLIENTS);

    my @g;

    for my $i (1 .. $cfg->{guard_runs}) {
        my $m = guard_run($cfg, $tmp, $i);
        push @g, $m;
        Bench::log_msg("  guard run %d: last canary response %.0fms after "
                       . "the fault (first 500 at %.0fms; %d failed "
                       . "requests; %d canary responses before)", $i,
                       ($m->{last_canary_s} // 99) * 1000,
                       ($m->{first_fail_s} // 99) * 1000, $m->{failed},
                       $m->{canary_before});
    }

    $r{guard} = summarize(@g);
    $r{guard}{command} = 'bench/rollback-guard.conf (guard error_rate=10 '
                         . 'min_requests=20 window=10s), touch FAULT at the '
                         . "canary origin under $cfg->{rollback_rate} req/s";

    if ($missing->{redis}) {
        $r{sidecar} = { pending => 'redis-server not installed' };
    } elsif (!-x $cfg->{sidecar}) {
        $r{sidecar} = { pending => 'pending: build/canary-sidecar not '
                                   . 'built yet' };
    } else {
        my @s;

        for my $i (1 .. $cfg->{sidecar_runs}) {
            my $m = sidecar_run($cfg, $tmp, $i);
            push @s, $m;
            Bench::log_msg("  sidecar run %d: last canary response %.0fms "
                           . "after the fault (weight 0 in Redis at %.0fms; "
                           . "%d failed requests; state %s)", $i,
                           ($m->{last_canary_s} // 99) * 1000,
                           ($m->{weight0_s} // 99) * 1000, $m->{failed},
                           $m->{state});
        }

        $r{sidecar} = summarize(@s);
        $r{sidecar}{command} = 'build/canary-sidecar --redis R --split app '
                               . '--status URL (default plan), canary-ctl '
                               . 'set-weight app 20, touch FAULT under '
                               . "$cfg->{rollback_rate} req/s";
    }

    Bench::log_msg("  guard rollback median %.0fms; sidecar %s",
                   ($r{guard}{median_s} // 99) * 1000,
                   $r{sidecar}{pending}
                   // sprintf('median %.0fms',
                              ($r{sidecar}{median_s} // 99) * 1000));

    return \%r;
}


1;
