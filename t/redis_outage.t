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

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(redis_split_conf($t,
                   redis => "$redis interval=200ms timeout=200ms"),
               workers => 4);

sub ctl { canary_ctl($redis, @_) }

sub status { status_json($t) }

# ---- 1. synced, under load -----------------------------------------------

$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

my ($rc, $out) = ctl('set-weight', 'app', 30);
is $rc, 0, 'canary-ctl set-weight app 30' or diag $out;

ok wait_until(3, sub {
        my $s = status();
        $s && $s->{redis}{connected} && $s->{splits}{app}{weight} == 30 }),
    'nginx synced weight 30 from Redis';

my $gen = status()->{splits}{app}{generation};

my $load = Traffic->start(port => $t->port('http'), clients => 3,
                          keep_alive => 0, record => 1,
                          tenant => sub { "t$_[0]-" . $_[1] % 300 });
sleep 0.5;

# ---- 2. Redis stops ------------------------------------------------------

# the restart below starts from the saved data, as a persistent Redis does
$t->redis_cli('SAVE');

my $mark = $t->log_mark;
my $t_stop = time;
$t->redis_stop;

my $noticed = wait_until(5, sub {
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
cmp_ok scalar(grep_lines(qr/canary_redis: cannot connect/, $down_log)),
    '<=', 1,
    'the failed reconnects are logged once, not on every retry'
    or diag $down_log;

# ---- 3. Redis is back ----------------------------------------------------

my $t_start = time;
$t->redis_start;

is $t->redis_cli('HGET', 'canary:app', 'weight'), '30',
    'Redis came back with its data';

# at once: no nginx reported to it yet (their records expired while it
# was down), so the operator forces the write
($rc, $out) = ctl('set-weight', 'app', 45, '--force');
is $rc, 0, 'canary-ctl set-weight app 45 right after the restart'
    or diag $out;

my $applied = wait_until(8, sub { weight_of($t) eq '45' });

ok defined $applied, 'the new write applies after Redis is back';

# (the cap itself is checked in 4., after a longer outage)
my $since_start = time - $t_start;
cmp_ok $since_start, '<', 6,
    'reconnected within seconds (the 3s backoff cap, a poll, a busy '
    . 'machine)';
diag sprintf "Redis restarted: weight 45 routed %.0fms after redis-server "
             . "started (down %.1fs)", $since_start * 1000,
             $t_start - $t_stop;

ok wait_until(2, sub { status()->{redis}{connected} }),
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
my $hang_noticed = wait_until(2, sub {
    !status()->{redis}{connected} });
ok defined $hang_noticed, 'status shows connected false when Redis hangs';
diag sprintf "Redis hung: status said connected false after %.0fms",
             ($hang_noticed // 99) * 1000;

my $said_connected = 0;
my $samples = sample_until($t_hang + 3.5, 0.1, sub {
    my $s = status();
    $said_connected++ if $s->{redis}{connected} });

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
my @hang_lines = grep_lines(qr/canary_redis:/, $hang_log);
cmp_ok scalar(@hang_lines), '<=', 3,
    'a hung Redis is logged once, not on every retry'
    or diag scalar(@hang_lines) . " lines:\n" . join "\n", @hang_lines[0 .. 5];

# the records expired while it hung: forced, at once
($rc, $out) = ctl('set-weight', 'app', 46, '--force');
is $rc, 0, 'canary-ctl set-weight app 46 once Redis answers again'
    or diag $out;

$applied = wait_until(6, sub { weight_of($t) eq '46' });
ok defined $applied, 'the write applies after the hang';
diag sprintf "Redis hung for %.1fs: weight 46 routed %.0fms after SIGCONT",
             $t_cont - $t_hang, (time - $t_cont) * 1000;

sleep 0.3;
my $rec = $load->stop->{records};

my @during = grep { $_->{time} > $t_stop && $_->{time} < $t_start } @$rec;
my @not30 = grep { ($_->{weight} // '') ne '30' } @during;
my @hung = grep { $_->{time} > $t_hang && $_->{time} < $t_cont } @$rec;
my @not45 = grep { ($_->{weight} // '') ne '45' } @hung;
my %weights;
$weights{$_->{weight} // 'none'}++ for @$rec;

cmp_ok scalar(@$rec), '>', 300, scalar(@$rec) . ' requests under load';
cmp_ok scalar(@during), '>', 100,
    scalar(@during) . ' requests while Redis was down';
served_ok($rec);
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

# several retries happen meanwhile (100ms, 200ms, 400ms, ... 3s, 3s):
# down 7s, so that a backoff that kept doubling (3.2s, then 6.4s: the
# retry after 6.3s would be at 12.7s) differs from one capped at 3s
# (retries at 6.1s and 9.1s) by more than a busy machine's delays
sleep 7;

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
my $warn = qr/\[warn\].*canary_redis: cannot connect to \Q$redis\E/;
is scalar(grep_lines($warn, $log)), 1, 'the failure to connect is logged once'
    or diag $log;
is scalar(grep_lines(qr/canary_redis:/, $log)), 1,
    'and nothing else about Redis while it stays down' or diag $log;

# Redis comes up with state written while nginx could not see it
$t_start = time;
$t->redis_start;
$t->redis_cli(qw(HSET canary:app weight 70 generation 9 state running));

$applied = wait_until(8, sub { weight_of($t) eq '70' });

ok defined $applied, 'weights sync once Redis is started';
diag sprintf "nginx started with Redis down: synced %.0fms after "
             . "redis-server started", (time - $t_start) * 1000;
cmp_ok time - $t_start, '<', 4.5,
    'within the 3s backoff cap (a doubling backoff would take 5s or more)';

$st = status();
is $st->{redis}{connected}, JSON::PP::true, 'connected';
is $st->{splits}{app}{source}, 'redis', 'source redis';
is $st->{splits}{app}{generation}, 9, 'generation 9';
is $st->{splits}{app}{state}, 'running', 'state from Redis';

$t->stop;

done_testing;
