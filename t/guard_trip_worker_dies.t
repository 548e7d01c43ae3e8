#!/usr/bin/perl

# Story: a worker dies in the middle of a guard trip (an OOM kill, a
# crash): it had swapped the guard's state to "tripping" and not yet
# finished.  Nobody else may finish another's trip while it lives, so
# before issue 16's review the split stayed on stable for good: the trip
# never written to Redis (the fleet and the sidecar never learned of
# it), canary-ctl reset ignored, until a restart.  Now the process that
# holds a trip is known (its pid, claimed before the swap), and a worker
# that finds it gone finishes the trip: written to Redis, and re-armed by
# canary-ctl reset as any trip is.
#
# gdb stops the only worker right after the swap (a hardware watchpoint
# on the state word) and kills it there.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

plan skip_all => 'gdb is not installed'
    unless grep { -x "$_/gdb" } split /:/, $ENV{PATH};

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_start;
my $down = $t->port('nothing listens here');

$t->write_conf(<<"EOF", workers => 1);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=500ms;

${\ split_block('app', 'stable_up', 'canary_down', 100,
                'guard error_rate=10 min_requests=5 window=5s') }
    upstream canary_down { server 127.0.0.1:$down; }

${\ $t->origins }
${\ front_server($t) }
EOF
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

sub status { status_json($t)->{splits}{app} }

ctl_ok($redis, 'set-weight', 'app', 100);
ok defined wait_until(3, sub { status()->{weight} == 100 }), 'weight 100';

my ($worker) = $t->worker_pids;
my ($gdb, $paused) = gdb_on_guard($t, $worker, 'kill');
$t->allow_log(qr/exited on signal 9|exited in the middle of a trip|connect\(\) failed/);

for my $i (1 .. 30) {
    last if -e $paused;
    $t->get($port, '/', { 'X-Tenant-Id' => "t$i" }, timeout => 1);
}

ok defined wait_until(10, sub { -e $paused }, 0.02),
    'the worker swapped the state to tripping, and gdb killed it there';
ok defined wait_until(10, sub { waitpid($gdb, WNOHANG) == $gdb }),
    'gdb is done';

ok defined wait_until(10, sub {
        ($t->redis_cli('HGET', 'canary:app', 'state') // '')
            eq 'guard_tripped' }),
    'a new worker finished the trip: it is in Redis';
like status()->{guard}{reason}, qr/exited while tripping/,
    'the reason says what happened';

ctl_ok($redis, 'reset', 'app', '--reason', 'test');
ok defined wait_until(5, sub { !status()->{guard}{tripped} }),
    'canary-ctl reset re-arms it';

$t->stop;

done_testing;
