#!/usr/bin/perl

# Story: canary-sidecar rolls a bad canary back on its error rate, and
# stays idle.  Then Redis loses everything: a FLUSHALL, and later a
# restart of a Redis without persistence.  The sidecar remembers in
# memory what it did: it writes its state (rolled_back, who stopped it)
# back into the empty Redis and never starts the rejected release again:
# no rollout_started, no weight, the plan's tenant not pinned to canary,
# nginx still sends everyone to stable.  Only canary-ctl reset (state
# ready, the saved state deleted on purpose) lets a new rollout start.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'redis-lost', canary_fault => 50);
$s->start;
$s->t->allow_log(qr/canary_redis|redis/i);
$s->fault('fault_canary', 1);
$s->traffic(clients => 3, rate => 100);

$s->sidecar(plan => fast_plan());

$s->wait_for(sub { ($s->state_hash->{status} // '') eq 'rolled_back' }, 30,
             'the sidecar rolls the bad canary back')
    or $s->show_log;

my @ops = $s->operations;
is_deeply [@ops[0 .. 2]],
    [qw(rollout_started sli_violation_detected rollback_executed)],
    'started, then rolled back on the error rate';
is $s->hget('state'), 'rolled_back', 'state rolled_back';

# nginx routes the pinned tenant (canary at the first stage) to stable
sub pinned_side {
    my $r = $s->t->route($s->port, '/',
                         { 'X-Tenant-Id' => $SidecarTest::PINNED });
    return $r->{side} // '';
}

sub no_new_rollout {
    my ($what) = @_;

    subtest "$what: no new rollout" => sub {
        ok !(grep { $_ eq 'rollout_started' } $s->operations),
            'no rollout_started in the stream';
        isnt $s->hget('state'), 'running', 'the split is not running';
        is $s->redis('SISMEMBER', $s->key . ':pin:canary',
                     $SidecarTest::PINNED), '0',
            'the plan\'s tenant is not pinned to canary';
        is pinned_side(), 'stable', 'nginx sends it to stable';
        my $st = $s->state_hash;
        is $st->{status}, 'rolled_back', 'the sidecar state says rolled_back';
        like $st->{stopped_by} // '', qr/rolled back by the sidecar/,
            'and who stopped it';
    };
}

is pinned_side(), 'stable', 'the pinned tenant is on stable';

for my $loss ('FLUSHALL', 'a restart without persistence') {
    if ($loss eq 'FLUSHALL') {
        $s->redis('FLUSHALL');

    } else {
        $s->t->redis_stop;
        $s->t->redis_start;
    }

    my $t0 = time;

    $s->wait_for(sub { ($s->state_hash->{status} // '') eq 'rolled_back' },
                 10, "$loss: the sidecar writes its state back")
        or $s->show_log;
    note sprintf '%s: written back after %.1fs', $loss, time - $t0;

    # many steps (interval 250ms) of an idle sidecar on an empty split
    sleep 3;
    no_new_rollout($loss);
}

my $log = $s->sidecar_log;
like $log, qr/Redis has lost the sidecar's state .* writing back what (?#
              )sidecar-a did: rolled_back/,
    'the sidecar says what it writes back, and why';

# a reset acknowledges the rollback: a new rollout may start
note $s->ctl('reset', 'api', '--reason', 'fixed');
$s->fault('fault_canary', 0);
$s->wait_for(sub { $s->hget('state') eq 'running' }, 10,
             'after canary-ctl reset a new rollout starts')
    or $s->show_log;
is((grep { $_ eq 'rollout_started' } $s->operations), 1,
   'one rollout_started, after the reset');

$s->finish;

done_testing;
