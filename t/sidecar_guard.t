#!/usr/bin/perl

# Story: the module's in-proxy guard is quicker than canary-sidecar.  At
# the 20% stage the canary starts failing 5% of its requests; the guard
# (error_rate=2, over 2s) trips inside nginx and writes weight 0, state
# guard_tripped and its own receipt to Redis.  The sidecar, still holding
# the violation for its violation_for, sees the guard's write by the
# generation and stops acting on the rollout: no rollback of its own, no
# second receipt, and no write that would re-arm the guard.  The guard's
# receipt carries the rollout's stage and counts from the sidecar's state.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'guard', canary_fault => 5,
                         guard => 'error_rate=2 min_requests=20 window=2s');
$s->start;
$s->t->allow_log(qr/canary guard/);
$s->traffic(clients => 3, rate => 100);

# long enough for the guard to act first
my $violation_for = 10;
my $plan = fast_plan(violation_for => "${violation_for}s");
$plan->{stages}[2]{hold} = '1m';

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'at the 20% stage')
    or $s->show_log;

sleep 1;
my $t_fault = $s->fault('fault_canary', 1);

# meanwhile, the sidecar's own violation (unix ms in its state)
my $violation_since;

$s->wait_for(sub {
    $violation_since ||= $s->state_hash->{violation_since};
    $s->hget('state') eq 'guard_tripped' }, 15, 'the guard trips')
    or $s->show_log;

$s->wait_for(sub { ($s->state_hash->{status} // '') eq 'rolled_back' }, 5,
             'the sidecar stops')
    or $s->show_log;

like $s->state_hash->{stopped_by}, qr/state guard_tripped by nginx-guard:/,
    'it records that the guard stopped it';

# Had it gone on judging, the sidecar would roll back violation_for
# (10s) after its violation began: wait past that moment.  Its
# violation began before the guard tripped, or (the guard first) it
# would have begun a few steps after the fault at the latest: without
# the guard, this rollout is rolled back 12.8s after the fault.
$violation_since = $violation_since ? $violation_since / 1000
                                    : $t_fault + 5;
note sprintf 'the sidecar\'s violation began %.1fs after the fault',
             $violation_since - $t_fault;

my $gen = $s->hget('generation');
sleep 0.1 while time < $violation_since + $violation_for + 1.5;

my @r = $s->receipts;
is $r[-1]{operation}, 'guard_tripped', 'the last receipt is the guard\'s';
ok !(grep { $_->{operation} eq 'rollback_executed'
            || $_->{operation} eq 'sli_violation_detected' } @r),
    "no rollback receipt from the sidecar ${violation_for}s after its "
    . 'violation began';
is $s->hget('generation'), $gen, 'nothing written after the guard';

# the guard's receipt takes the rollout's fields from the sidecar's state
my $g = $r[-1];
is $g->{stage}, '20_percent', 'the guard\'s receipt: the sidecar\'s stage';
is $g->{stages_completed}, 2, 'its stages completed';
is $g->{rollbacks_triggered}, 1, 'this rollback counted';
cmp_ok $g->{duration_at_stage_seconds} // -1, '>=', 1,
    'how long the rollout was at the stage';
ok defined $g->{rollout_elapsed_seconds}, 'and since it started';
like $g->{detected_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'detected_at: the trip';
is_deeply $g->{failed_checks}, ['guard_error_rate'], 'what failed';
is $s->state_hash->{rollbacks}, 1,
    'the sidecar counts the guard\'s rollback in its state too';
is $s->hget('weight'), '0', 'the guard\'s weight 0 stands';
like $s->sidecar_log, qr/stopped: state guard_tripped by nginx-guard/,
    'logged';

$s->finish;

done_testing;
