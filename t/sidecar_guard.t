#!/usr/bin/perl

# Story: the module's in-proxy guard is quicker than canary-sidecar.  At
# the 20% stage the canary starts failing 5% of its requests; the guard
# (error_rate=2, over 2s) trips inside nginx and writes weight 0, state
# guard_tripped and its own receipt to Redis.  The sidecar, still holding
# the violation for its violation_for, sees the guard's write by the
# generation and stops acting on the rollout: no rollback of its own, no
# second receipt, and no write that would re-arm the guard.

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

my $plan = fast_plan(violation_for => '10s');
$plan->{stages}[2]{hold} = '1m';

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'at the 20% stage')
    or $s->show_log;

sleep 1;
$s->fault('fault_canary', 1);

$s->wait_for(sub { $s->hget('state') eq 'guard_tripped' }, 15,
             'the guard trips')
    or $s->show_log;

$s->wait_for(sub { ($s->state_hash->{status} // '') eq 'rolled_back' }, 5,
             'the sidecar stops')
    or $s->show_log;

like $s->state_hash->{stopped_by}, qr/state guard_tripped by nginx-guard:/,
    'it records that the guard stopped it';

my $gen = $s->hget('generation');
sleep 1.5;

my @r = $s->receipts;
is $r[-1]{operation}, 'guard_tripped', 'the last receipt is the guard\'s';
ok !(grep { $_->{operation} eq 'rollback_executed'
            || $_->{operation} eq 'sli_violation_detected' } @r),
    'no rollback receipt from the sidecar';
is $s->hget('generation'), $gen, 'nothing written after the guard';
is $s->hget('weight'), '0', 'the guard\'s weight 0 stands';
like $s->sidecar_log, qr/stopped: state guard_tripped by nginx-guard/,
    'logged';

$s->finish;

done_testing;
