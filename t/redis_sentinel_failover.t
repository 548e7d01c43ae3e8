#!/usr/bin/perl

# Story: Redis stays up through Sentinel.  A primary, a replica and three
# sentinels on loopback (t/lib/SentinelStory.pm); nginx (2 workers) with
# canary_redis sentinel=... master=..., canary-sidecar with
# --redis-sentinel leading a rollout that holds, traffic running.  The
# primary is killed (SIGKILL):
#   - requests keep flowing, not one fails;
#   - the sentinels promote the replica, and nginx moves to it: the status
#     page names its address, connected, and the log says the move once;
#   - canary-ctl --sentinel set-weight after the failover reaches nginx
#     (the generation and the weight on the new primary);
#   - the sidecar finds the new primary and holds the lease there (or
#     takes it again once it expired): the leader key on the new primary
#     is its id, and it says where the master went.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use SentinelStory;
use Traffic;

my $t = CanaryTest->new(name => 'sentinel');
my $rs = SentinelStory->start($t);

my $sentinels = $rs->sentinels;
my $master = $rs->master;

# the old primary's death, until the move
$t->allow_log(qr/canary_redis: (lost the|cannot connect|no sentinel|.* did not answer)/);

$t->write_conf(redis_split_conf($t,
                   redis => "sentinel=$sentinels master=$master "
                            . 'interval=200ms timeout=300ms'),
               workers => 2);
$t->start;

sub redis_status { status_json($t)->{redis} }

sub ctl {
    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        delete $ENV{CANARY_REDIS};
        exec $RedisStory::CTL, '--sentinel', $sentinels, '--master', $master,
             @_ or POSIX::_exit(127);
    }

    local $/;
    my $out = <$fh> // '';
    close $fh;

    return ($? >> 8, $out);
}

# ---- before: the primary --------------------------------------------------

ok wait_until(5, sub { my $r = redis_status();
                       $r->{connected} && $r->{address} eq $rs->primary }),
    'nginx asks the sentinels and connects to the primary'
    or diag explain redis_status();
is redis_status()->{master}, $master, 'the status page names the master';
ok $t->wait_for_log(qr/canary_redis: master "\Q$master\E" is at \Q${\ $rs->primary }\E \(sentinel /, 3),
    'and the log says where it was found';

my ($rc, $out) = ctl('set-weight', 'app', 10);
is $rc, 0, 'canary-ctl --sentinel writes to the primary' or diag $out;
ok wait_until(3, sub { status_json($t)->{splits}{app}{weight} == 10 }),
    'nginx applies it';

# the sidecar: a rollout that holds its first stage, and the lease
my $plan = $t->prefix . '/plan.json';
write_file($plan, JSON::PP->new->encode({
    stages => [ { name => 'canary', weight => 0, hold => '60s' },
                { name => 'all', weight => 100, hold => '0s',
                  manual => JSON::PP::true } ],
    pins => ['vip-1'],
    slo => { error_rate_max => 50, min_requests => 10 },
    interval => '250ms', window => '5s', violation_for => '5s',
    on_violation => 'pause' }));

my $sidecar_log = $t->prefix . '/sidecar.log';
$t->spawn('sh', '-c', 'exec "$@" >>' . $sidecar_log . ' 2>&1', 'sh',
          "$CanaryTest::ROOT/build/canary-sidecar",
          '--redis-sentinel', $sentinels, '--redis-master', $master,
          '--split', 'app', '--status',
          'http://127.0.0.1:' . $t->port('http') . '/canary_status',
          '--plan', $plan, '--id', 'sidecar-a');

sub sidecar_log { open my $fh, '<', $sidecar_log or return ''; local $/; <$fh> }

ok wait_until(10, sub { $rs->cli($rs->primary, 'GET', 'canary:app:leader')
                        eq 'sidecar-a' }),
    'the sidecar holds the lease on the primary' or diag sidecar_log();
like sidecar_log(), qr/redis: master \Q$master\E is at \Q${\ $rs->primary }\E/,
    'the sidecar found the master through the sentinels';

# ---- the primary dies under load ------------------------------------------

my $load = Traffic->start(port => $t->port('http'), clients => 2,
                          tenants => 300, record => 1);
sleep 1;

my $mark = $t->log_mark;
my $killed = time;
$rs->kill_primary;

my $promoted = $rs->wait_failover(15);
ok defined $promoted, 'the sentinels promote the replica';

my $moved = wait_until(10, sub { my $r = redis_status();
                                 $r->{connected}
                                 && $r->{address} eq $rs->replica });
my $took = time - $killed;
ok defined $moved, 'nginx moves to the new primary, connected'
    or diag explain redis_status();
diag sprintf 'primary killed: the sentinels agree on the replica after '
             . '%.1fs, nginx is connected to it after %.1fs',
             $promoted // -1, $took;

($rc, $out) = ctl('set-weight', 'app', 30);
is $rc, 0, 'canary-ctl --sentinel writes to the new primary' or diag $out;
my $gen = $rs->cli($rs->replica, 'HGET', 'canary:app', 'generation');

ok wait_until(3, sub { my $s = status_json($t)->{splits}{app};
                       $s->{weight} == 30 && $s->{generation} == $gen }),
    "nginx applies it: weight 30, generation $gen"
    or diag explain status_json($t)->{splits}{app};

my @moves = grep { /master "\Q$master\E" moved from/ }
            split /\n/, $t->log_since($mark);
is scalar(@moves), 1, 'nginx logs the move once' or diag join "\n", @moves;
like $moves[0] // '', qr/to \Q${\ $rs->replica }\E/, 'to the replica';

my $re = qr/redis: master \Q$master\E moved to \Q${\ $rs->replica }\E/;
ok wait_until(10, sub { sidecar_log() =~ $re }),
    'the sidecar finds the new primary through the sentinels'
    or diag sidecar_log();
diag sprintf 'the sidecar moved %.1fs after the kill', time - $killed;

# renewed there (the lease is 3s): a key only replicated would run out
ok wait_until(5, sub { $rs->cli($rs->replica, 'GET', 'canary:app:leader')
                       eq 'sidecar-a'
                       && $rs->cli($rs->replica, 'PTTL', 'canary:app:leader')
                          > 2500 }),
    'and holds the lease there, renewed' or diag sidecar_log();
unlike sidecar_log(), qr/standby:/, 'no other holder in between';

sleep 1;
my $rec = $load->stop->{records};
ok @$rec > 200, scalar(@$rec) . ' requests during the failover';
served_ok($rec);

$t->stop;

done_testing;
