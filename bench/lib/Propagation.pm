package Propagation;

# 3. Weight propagation: the time from the start of
# "scripts/canary-ctl set-weight app W" to the moment every worker of two
# nginx instances (4 workers each, one redis-server) answers with
# $canary_weight = W.  The poller holds one keep-alive connection per
# worker (reuseport spreads connections; $pid in the body tells workers
# apart) and asks all 8 at once, round after round, while canary-ctl runs.

use strict;
use warnings;

use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use Bench;


my $WORKERS = 4;


# a minimal Redis client (RESP) on one connection, for the direct writes
sub resp_cmd {
    my (@args) = @_;

    return '*' . @args . "\r\n"
           . join('', map { '$' . length($_) . "\r\n$_\r\n" } @args);
}


# reads one reply (any type) from $$buf/$s; returns its text
sub resp_read {
    my ($s, $buf) = @_;

    for (;;) {
        my $r = resp_parse($buf, 0);
        if (defined $r) {
            substr($$buf, 0, $r->[1]) = '';
            return $r->[0];
        }

        my $n = sysread($s, $$buf, 65536, length $$buf);
        die "bench: redis connection closed\n" unless $n;
    }
}


# [value, bytes used] or undef when incomplete
sub resp_parse {
    my ($buf, $at) = @_;

    my $nl = index($$buf, "\r\n", $at);
    return undef if $nl < 0;

    my $type = substr($$buf, $at, 1);
    my $line = substr($$buf, $at + 1, $nl - $at - 1);
    my $end = $nl + 2;

    if ($type eq '+' || $type eq '-' || $type eq ':') {
        die "bench: redis: $line\n" if $type eq '-';
        return [$line, $end - $at];
    }

    if ($type eq '$') {
        return ['', $end - $at] if $line < 0;
        return undef if length($$buf) < $end + $line + 2;
        return [substr($$buf, $end, $line), $end + $line + 2 - $at];
    }

    if ($type eq '*') {
        my @v;
        my $pos = $end;
        for (1 .. ($line < 0 ? 0 : $line)) {
            my $r = resp_parse($buf, $pos) // return undef;
            push @v, $r->[0];
            $pos += $r->[1];
        }
        return [join(' ', @v), $pos - $at];
    }

    die "bench: redis: unexpected reply \"$type$line\"\n";
}


# the write canary-ctl makes, as one pipeline on an open connection (the
# way canary-sidecar writes with hiredis): MULTI, HINCRBY generation,
# HSET weight ..., EXEC, PUBLISH
sub direct_write {
    my ($redis, $weight) = @_;

    my $key = 'canary:app';
    my @ts = gmtime;
    my $now = sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ', $ts[5] + 1900,
                      $ts[4] + 1, @ts[3, 2, 1, 0]);

    syswrite($redis->{s}, join('',
        resp_cmd('MULTI'),
        resp_cmd('HINCRBY', $key, 'generation', 1),
        resp_cmd('HSET', $key, 'weight', $weight, 'updated_by', 'bench',
                 'updated_at', $now),
        resp_cmd('EXEC'),
        resp_cmd('PUBLISH', $key, 'weight_set')));
}


sub direct_replies {
    my ($redis) = @_;

    resp_read($redis->{s}, \$redis->{buf}) for 1 .. 5;
}


# one keep-alive connection per worker of one instance
sub connect_workers {
    my ($inst) = @_;

    my %want = map { $_ => 1 } $inst->{nginx}->worker_pids;
    my %conn;

    for (1 .. 400) {
        last if keys %conn == keys %want;

        my $s = Bench::connect_tcp($inst->{port}) or next;
        my $buf = '';

        syswrite($s, Bench::http_request_text('/', []));
        my $r = Bench::read_response($s, \$buf, 5) or next;
        my ($pid) = $r->{body} =~ /^(\d+) /;

        if ($pid && $want{$pid} && !$conn{$pid}) {
            $conn{$pid} = { s => $s, buf => '', pid => $pid,
                            name => "$inst->{name}/$pid" };
        } else {
            close $s;
        }
    }

    die "bench: reuseport gave connections to "
        . scalar(keys %conn) . " of $WORKERS workers of $inst->{name}\n"
        if keys %conn < $WORKERS;

    return values %conn;
}


# asks every connection once; returns { name => weight }
sub poll_round {
    my (@conns) = @_;

    my $req = Bench::http_request_text('/', []);
    my %w;

    syswrite($_->{s}, $req) for @conns;

    for my $c (@conns) {
        my $r = Bench::read_response($c->{s}, \$c->{buf}, 5)
            or die "bench: worker $c->{name} stopped answering\n";
        my ($pid, $weight) = $r->{body} =~ /^(\d+) (\S+)/;
        die "bench: $c->{name} answered for pid $pid\n" if $pid != $c->{pid};
        $w{$c->{name}} = $weight;
    }

    return \%w;
}


# polls until every connection answered $want; returns { name => seconds
# after $t0 }; $tick->() runs after every round
sub wait_all {
    my ($conns, $want, $t0, $tick) = @_;

    my %first;
    my $rounds = 0;

    while (keys %first < @$conns && time - $t0 < 5) {
        my $w = poll_round(@$conns);
        my $now = time;
        $rounds++;

        for my $name (keys %$w) {
            $first{$name} //= $now - $t0 if $w->{$name} == $want;
        }

        $tick->($now) if $tick;

        # leave the CPUs to canary-ctl, Redis and nginx between rounds
        sleep 0.001;
    }

    return (\%first, $rounds);
}


sub slowest {
    my ($first, $prefix) = @_;

    my @t = map { $first->{$_} } grep { !$prefix || /^$prefix\// }
            keys %$first;

    return (Bench::min_max(@t))[1];
}


sub run {
    my ($cfg, $tmp) = @_;

    my $writes = $cfg->{prop_writes};
    my $redis = Bench::redis_start('redis-propagation');
    my @inst;

    Bench::log_msg("propagation: %d writes with canary-ctl and %d direct "
                   . "ones, 2 nginx x %d workers, redis on %d", $writes,
                   $writes, $WORKERS, $redis->{port});

    for my $name (qw(A B)) {
        my $port = Bench::port();
        my $dir = "$tmp/prop-$name";
        my $up = Bench::template('upstreams.conf',
                                 STABLE_PORT => $cfg->{origins}{stable},
                                 CANARY_PORT => $cfg->{origins}{canary});
        my $ngx = Bench::nginx(
            name    => "prop-$name",
            workers => $WORKERS,
            ports   => [$port],
            conf    => Bench::main_conf(
                dir     => $dir,
                workers => $WORKERS,
                modules => [$cfg->{module}],
                http    => Bench::template('propagation.conf',
                                           UPSTREAMS  => $up,
                                           PORT       => $port,
                                           REDIS_PORT => $redis->{port})));
        $ngx->start;
        push @inst, { name => $name, port => $port, nginx => $ngx };
    }

    # both subscribed before the first write
    for my $i (@inst) {
        my $deadline = time + 10;
        until ((Bench::http_get($i->{port}, '/canary_status') || {})->{body}
               =~ /"connected":true/)
        {
            die "bench: nginx $i->{name} never connected to Redis\n"
                if time > $deadline;
            sleep 0.05;
        }
    }

    my @conns = map { connect_workers($_) } @inst;
    my @ctl_cmd = ($cfg->{ctl}, '--redis', "127.0.0.1:$redis->{port}");

    # canary-ctl writes a split only once a live nginx reports it (every
    # interval, 1s)
    my $deadline = time + 10;
    until ((Bench::run_cmd([@ctl_cmd, 'fleet', 'app', '--json'],
                           name => 'canary-ctl'))[1] =~ /"node":/)
    {
        die "bench: no nginx reports split app\n" if time > $deadline;
        sleep 0.1;
    }
    my $rc_conn = Bench::connect_tcp($redis->{port})
        or die "bench: connect to redis: $!\n";
    my $direct = { s => $rc_conn, buf => '' };
    my (@rows, $rounds_total, $rounds_time);

    for my $i (1 .. 2 * $writes) {
        my $mode = $i % 2 ? 'canary-ctl' : 'direct';

        # distinct weights, 0.01 .. 99.99, never the previous one
        my $want = sprintf('%.2f', (($i * 3761) % 9999 + 1) / 100);
        $want =~ s/\.?0+$//;

        my ($pid, $t_ctl, $rc, $first, $rounds);
        my $out = "$tmp/ctl-$i.out";
        my $t0 = time;

        if ($mode eq 'canary-ctl') {
            $pid = Bench::spawn('canary-ctl', [@ctl_cmd, 'set-weight', 'app',
                                               $want], out => $out);

            ($first, $rounds) = wait_all(\@conns, $want, $t0, sub {
                if (!defined $t_ctl && waitpid($pid, WNOHANG) == $pid) {
                    $t_ctl = $_[0] - $t0;
                    $rc = $? >> 8;
                    Bench::forget($pid);
                }
            });

            if (!defined $t_ctl) {
                waitpid($pid, 0);
                $t_ctl = time - $t0;
                $rc = $? >> 8;
                Bench::forget($pid);
            }

            die "bench: canary-ctl set-weight app $want failed:\n"
                . (Bench::slurp($out) // '') if $rc;
            unlink $out;

        } else {
            direct_write($direct, $want);
            ($first, $rounds) = wait_all(\@conns, $want, $t0);
            direct_replies($direct);
        }

        $rounds_total += $rounds;
        $rounds_time += time - $t0;

        my @missing = grep { !defined $first->{$_->{name}} } @conns;
        die "bench: weight $want ($mode) never reached "
            . join(', ', map { $_->{name} } @missing) . "\n" if @missing;

        push @rows, { write => $i, mode => $mode, weight => $want,
                      all_ms => slowest($first) * 1000,
                      a_ms => slowest($first, 'A') * 1000,
                      b_ms => slowest($first, 'B') * 1000,
                      ctl_ms => defined $t_ctl ? $t_ctl * 1000 : undef,
                      rounds => $rounds };

        Bench::debug("  write %3d %-10s weight %-6s all workers %.1fms%s", $i,
                     $mode, $want, $rows[-1]{all_ms},
                     defined $t_ctl ? sprintf(' (canary-ctl %.1fms)',
                                              $t_ctl * 1000) : '');

        # not in step with the 1s poll of canary_redis
        sleep 0.02 + rand(0.03);
    }

    my @ctl = map { $_->{all_ms} } grep { $_->{mode} eq 'canary-ctl' } @rows;
    my @dir = map { $_->{all_ms} } grep { $_->{mode} eq 'direct' } @rows;
    my @run = map { $_->{ctl_ms} } grep { $_->{mode} eq 'canary-ctl' } @rows;

    my %r = (
        rows       => \@rows,
        writes     => $writes,
        p50_ms     => Bench::percentile(50, @ctl),
        p99_ms     => Bench::percentile(99, @ctl),
        max_ms     => (Bench::min_max(@ctl))[1],
        direct_p50 => Bench::percentile(50, @dir),
        direct_p99 => Bench::percentile(99, @dir),
        direct_max => (Bench::min_max(@dir))[1],
        ctl_p50    => Bench::percentile(50, @run),
        ctl_p99    => Bench::percentile(99, @run),
        round_ms   => $rounds_total ? $rounds_time * 1000 / $rounds_total : 0,
        command    => "scripts/canary-ctl --redis 127.0.0.1:PORT set-weight "
                      . "app W; poll \$canary_weight over one keep-alive "
                      . "connection per worker (2 nginx x $WORKERS workers, "
                      . "listen reuseport, bench/propagation.conf)",
        command_direct => 'MULTI; HINCRBY canary:app generation 1; HSET '
                          . 'canary:app weight W ...; EXEC; PUBLISH '
                          . 'canary:app weight_set (one pipeline on an open '
                          . 'connection); same poll',
    );

    Bench::log_msg("  to all %d workers after canary-ctl: p50 %.1fms p99 "
                   . "%.1fms (canary-ctl itself p50 %.1fms); after a direct "
                   . "write: p50 %.1fms p99 %.1fms; poll round %.2fms",
                   scalar(@conns), $r{p50_ms}, $r{p99_ms}, $r{ctl_p50},
                   $r{direct_p50}, $r{direct_p99}, $r{round_ms});

    close $_->{s} for @conns;
    close $rc_conn;

    for my $i (@inst) {
        push @{$r{bad_log}}, map { "propagation $i->{name}: $_" }
                             $i->{nginx}->bad_log_lines;
        $i->{nginx}->stop;
    }

    Bench::redis_stop($redis);

    return \%r;
}


1;
