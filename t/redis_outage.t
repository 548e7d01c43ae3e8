#!/usr/bin/perl

# Story: Redis goes away under load and comes back.
#
# 1. nginx (4 workers) syncs weight 30 from Redis.  Background clients
#    (forked, no keep-alive) send requests the whole time.
# 2. Redis is stopped: not one request fails, every request still routes
#    at weight 30, and the status page says connected false with a
#    last_error.
# 3. Redis is started again (from its saved data): nginx reconnects by
#    itself (backoff capped at 3s) and a new canary-ctl write applies.
#    Then Redis hangs (SIGSTOP: connections are accepted, nothing is
#    answered): the same, through the reply timeout; it is not
#    "connected" while it does not answer.
# 4. nginx started while Redis is down: it serves with the nginx.conf
#    weight, logs the connection failure once (not on each retry), and
#    syncs as soon as Redis is up.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use HTTP::Tiny;
use JSON::PP;
use POSIX qw(_exit);
use Storable qw(nstore retrieve);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $CTL = "$FindBin::Bin/../scripts/canary-ctl";

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(<<"EOF", workers => 4);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=200ms;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 5;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF

# ---- helpers -------------------------------------------------------------

sub ctl {
    my (@args) = @_;

    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec $CTL, '--redis', $redis, @args or _exit(127);
    }

    local $/;
    my $out = <$fh> // '';
    close $fh;

    return ($? >> 8, $out);
}

sub status {
    my $r = $t->get($port, '/canary_status');

    return $r->{status} == 200 ? decode_json($r->{content}) : undef;
}

sub wait_for {
    my ($what, $seconds, $cond) = @_;

    my $t0 = time;

    until ($cond->()) {
        return undef if time - $t0 > $seconds;
        sleep 0.02;
    }

    return time - $t0;
}

# forked clients, each a loop of requests without keep-alive, until the
# stop file appears; every response is kept as [time, status, weight,
# variant, body side, error]
sub start_load {
    my ($clients) = @_;

    my $stop = $t->prefix . "/tmp/stop-load";
    unlink $stop;

    my @kids;
    my $parent = $$;

    for my $c (1 .. $clients) {
        my $file = $t->prefix . "/tmp/load-$c";
        my $pid = fork // die "fork: $!";

        if ($pid == 0) {
            my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 5);
            my ($i, @rec) = (0);

            while (!-e $stop && kill(0, $parent) && @rec < 200000) {
                my $r = $http->get("http://127.0.0.1:$port/",
                    { headers => { 'X-Tenant-Id' => "t$c-" . $i++ % 300 } });
                my $h = $r->{headers};

                push @rec, [ time, $r->{status}, $h->{'x-canary-weight'},
                             $h->{'x-canary-variant'},
                             ($r->{content} // '') =~ /^(\w+)/ ? $1 : '',
                             $r->{status} == 599 ? $r->{content} : '' ];
            }

            nstore(\@rec, $file);
            _exit(0);
        }

        push @kids, [$pid, $file];
    }

    return { stop => $stop, kids => \@kids };
}

sub stop_load {
    my ($load) = @_;

    open my $fh, '>', $load->{stop} or die "$load->{stop}: $!";
    close $fh;

    my @rec;

    for my $k (@{$load->{kids}}) {
        waitpid $k->[0], 0;
        push @rec, @{retrieve($k->[1])};
    }

    return [ sort { $a->[0] <=> $b->[0] } @rec ];
}

sub count_lines {
    my ($re, $text) = @_;

    return scalar grep { $_ =~ $re } split /\n/, $text;
}

# ---- 1. synced, under load -----------------------------------------------

$t->start;

my ($rc, $out) = ctl('set-weight', 'app', 30);
is $rc, 0, 'canary-ctl set-weight app 30' or diag $out;

ok wait_for('weight 30', 3, sub {
        my $s = status();
        $s && $s->{redis}{connected} && $s->{splits}{app}{weight} == 30 }),
    'nginx synced weight 30 from Redis';

my $gen = status()->{splits}{app}{generation};

my $load = start_load(3);
sleep 0.5;

# ---- 2. Redis stops ------------------------------------------------------

# the restart below starts from the saved data, as a persistent Redis does
$t->redis_cli('SAVE');

my $mark = $t->log_mark;
my $t_stop = time;
$t->redis_stop;

my $noticed = wait_for('disconnected', 5, sub {
    my $s = status();
    $s && !$s->{redis}{connected} });
ok defined $noticed, 'status shows connected false once Redis is gone';
diag sprintf "Redis stopped: status said connected false after %.0fms",
             ($noticed // 99) * 1000;

# down for a while, under load, across several polls and retries
sleep 2.5;

my $st = status();
is $st->{redis}{connected}, JSON::PP::false, 'connected false while down';
like $st->{redis}{last_error} // '', qr/canary_redis: .*\Q$redis\E/,
    'last_error names the Redis address';
cmp_ok $st->{redis}{last_error_time}, '>=', int($t_stop),
    'last_error_time is of this outage';
is $st->{splits}{app}{weight}, 30, 'weight unchanged while Redis is down';
is $st->{splits}{app}{generation}, $gen, 'generation unchanged';
is $st->{splits}{app}{source}, 'redis', 'source still redis';
cmp_ok $st->{redis}{stale_seconds}, '>=', 2, 'stale_seconds grows';

my $down_log = $t->log_since($mark);
cmp_ok count_lines(qr/canary_redis: cannot connect/, $down_log), '<=', 1,
    'the failed reconnects are logged once, not on every retry'
    or diag $down_log;

# ---- 3. Redis is back ----------------------------------------------------

my $t_start = time;
$t->redis_start;

is $t->redis_cli('HGET', 'canary:app', 'weight'), '30',
    'Redis came back with its data';

($rc, $out) = ctl('set-weight', 'app', 45);
is $rc, 0, 'canary-ctl set-weight app 45 right after the restart'
    or diag $out;

my $applied = wait_for('weight 45', 6, sub {
    my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'probe' });
    ($d->{weight} // '') eq '45' });

ok defined $applied, 'the new write applies after Redis is back';

my $since_start = time - $t_start;
cmp_ok $since_start, '<', 3.6,
    'reconnected within the 3s backoff cap (plus a poll)';
diag sprintf "Redis restarted: weight 45 routed %.0fms after redis-server "
             . "started (down %.1fs)", $since_start * 1000,
             $t_start - $t_stop;

ok wait_for('connected', 2, sub { status()->{redis}{connected} }),
    'status shows connected again';

# ---- 3b. Redis hangs -----------------------------------------------------

# SIGSTOP: the kernel still accepts connections for it, but nothing ever
# answers (a hung Redis, a blackholed network); the reply timeout applies
my ($redis_pid) = $t->redis_cli('INFO', 'server') =~ /process_id:(\d+)/;
ok $redis_pid, "redis-server pid $redis_pid";

$mark = $t->log_mark;
my $t_hang = time;
kill 'STOP', $redis_pid;

# noticed after a poll and its reply timeout
my $hang_noticed = wait_for('disconnected', 2, sub {
    !status()->{redis}{connected} });
ok defined $hang_noticed, 'status shows connected false when Redis hangs';
diag sprintf "Redis hung: status said connected false after %.0fms",
             ($hang_noticed // 99) * 1000;

my ($samples, $said_connected) = (0, 0);

while (time - $t_hang < 3.5) {
    my $s = status();
    $samples++;
    $said_connected++ if $s->{redis}{connected};
    sleep 0.1;
}

my $hang_log = $t->log_since($mark);
my $t_cont = time;
kill 'CONT', $redis_pid;

$st = status();
is $st->{splits}{app}{weight}, 45, 'weight unchanged while Redis hangs';
is $said_connected, 0, "status said connected false in all $samples "
    . 'samples while Redis did not answer'
    or diag "$said_connected of $samples samples said connected true";
like $st->{redis}{last_error} // '', qr/did not answer/,
    'last_error says Redis did not answer';
cmp_ok count_lines(qr/canary_redis:/, $hang_log), '<=', 3,
    'a hung Redis is logged once, not on every retry'
    or diag count_lines(qr/canary_redis:/, $hang_log) . " lines:\n"
            . join "\n", (grep { /canary_redis:/ } split /\n/, $hang_log)
                         [0 .. 5];

($rc, $out) = ctl('set-weight', 'app', 46);
is $rc, 0, 'canary-ctl set-weight app 46 once Redis answers again'
    or diag $out;

$applied = wait_for('weight 46', 6, sub {
    my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'probe' });
    ($d->{weight} // '') eq '46' });
ok defined $applied, 'the write applies after the hang';
diag sprintf "Redis hung for %.1fs: weight 46 routed %.0fms after SIGCONT",
             $t_cont - $t_hang, (time - $t_cont) * 1000;

sleep 0.3;
my $rec = stop_load($load);

my @failed = grep { $_->[1] != 200 } @$rec;
my @wrong_side = grep { ($_->[3] // '') ne $_->[4] } @$rec;
my @during = grep { $_->[0] > $t_stop && $_->[0] < $t_start } @$rec;
my @not30 = grep { ($_->[2] // '') ne '30' } @during;
my @hung = grep { $_->[0] > $t_hang && $_->[0] < $t_cont } @$rec;
my @not45 = grep { ($_->[2] // '') ne '45' } @hung;
my %weights;
$weights{$_->[2] // 'none'}++ for @$rec;

cmp_ok scalar(@$rec), '>', 300, scalar(@$rec) . ' requests under load';
cmp_ok scalar(@during), '>', 100,
    scalar(@during) . ' requests while Redis was down';
is scalar(@failed), 0, 'no request failed'
    or diag explain [ @failed[0 .. ($#failed < 4 ? $#failed : 4)] ];
is scalar(@wrong_side), 0, 'every response came from the variant chosen';
is scalar(@not30), 0, 'every request while Redis was down routed at 30';
cmp_ok scalar(@hung), '>', 100,
    scalar(@hung) . ' requests while Redis hung';
is scalar(@not45), 0, 'every request while Redis hung routed at 45';
is_deeply [ sort { $a <=> $b } keys %weights ], [ 30, 45, 46 ],
    'only weights 30, 45 and 46 were ever seen';

my $st2 = status();
is $st2->{splits}{app}{weight}, 46, 'status weight 46';
cmp_ok $st2->{splits}{app}{generation}, '>', $gen, 'generation raised';

like $t->log_since($mark), qr/\[notice\].*canary_redis: connected to/,
    'the reconnect is logged';

$t->stop;

# ---- 4. nginx starts while Redis is down ---------------------------------

$t->redis_stop;
unlink $t->prefix . '/redis/dump.rdb';

$mark = $t->log_mark;
$t->start;

# several retries happen meanwhile (100ms, 200ms, 400ms, ... 3s)
sleep 2.5;

$st = status();
is $st->{redis}{connected}, JSON::PP::false, 'started with Redis down';
is $st->{splits}{app}{weight}, 5, 'nginx.conf weight 5 applies';
is $st->{splits}{app}{source}, 'conf', 'source conf';
like $st->{redis}{last_error} // '', qr/cannot connect/,
    'last_error says it cannot connect';

my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'probe' });
is $d->{status}, 200, 'requests are served';
is $d->{weight}, 5, 'routed at the nginx.conf weight';

my $log = $t->log_since($mark);
is count_lines(qr/\[warn\].*canary_redis: cannot connect to \Q$redis\E/,
               $log), 1, 'the failure to connect is logged once'
    or diag $log;
is count_lines(qr/canary_redis:/, $log), 1,
    'and nothing else about Redis while it stays down' or diag $log;

# Redis comes up with state written while nginx could not see it
$t_start = time;
$t->redis_start;
$t->redis_cli(qw(HSET canary:app weight 70 generation 9 state running));

$applied = wait_for('weight 70', 6, sub {
    my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'probe' });
    ($d->{weight} // '') eq '70' });

ok defined $applied, 'weights sync once Redis is started';
diag sprintf "nginx started with Redis down: synced %.0fms after "
             . "redis-server started", (time - $t_start) * 1000;
cmp_ok time - $t_start, '<', 3.6, 'within the backoff cap';

$st = status();
is $st->{redis}{connected}, JSON::PP::true, 'connected';
is $st->{splits}{app}{source}, 'redis', 'source redis';
is $st->{splits}{app}{generation}, 9, 'generation 9';
is $st->{splits}{app}{state}, 'running', 'state from Redis';

$t->stop;

done_testing;
