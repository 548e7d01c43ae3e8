#!/usr/bin/perl

# Story: a critical violation during a gradual rollback.  At 20% the
# canary turns slow (latency_p95_max_ms 50): the sidecar starts walking
# down the plan's steps [10, 5, 0], each held 60s.  At 10% the canary
# also fails every request: the critical path (over 3 x error_rate_max)
# sends it to 0 at once, without waiting for the step's hold.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'rollback-gradual-critical',
                         slow_ms => 150, canary_fault => 100);
$s->start;
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan();
$plan->{slo}{latency_p95_max_ms} = 50;
$plan->{stages}[2]{hold} = '10m';   # stay at 20%
$plan->{rollback} = { steps => [10, 5, 0], step_hold => '60s' };

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'at the 20% stage')
    or $s->show_log;

$s->fault('slow_canary', 1);

$s->wait_for(sub { $s->hget('weight') eq '10' }, 20, 'the first step: 10%')
    or $s->show_log;
is $s->hget('state'), 'rolling_back', 'rolling back';

# (a slow canary's requests go to the slow origin, which never fails)
$s->fault('slow_canary', 0);
my $on = $s->fault('fault_canary', 1);
my $zero;

$s->wait_for(sub {
    return 0 unless $s->hget('weight') eq '0';
    $zero = time;
}, 20, 'weight 0 after the canary failed') or $s->show_log;

diag sprintf 'failing canary to weight 0 mid-walk: %.2fs',
    ($zero || time) - $on;
cmp_ok(($zero || time) - $on, '<', 30, 'long before the 60s step hold');

is $s->hget('state'), 'rolled_back', 'rolled back';

my @r = $s->receipts;
is_deeply [map { $_->{operation} } @r[-4 .. -1]],
    [qw(sli_violation_detected rollback_step
        sli_violation_detected rollback_executed)],
    'one step, then the critical violation straight to 0';
is $r[-1]{from_weight}, 10, 'from the step\'s 10%';
is $r[-1]{to_weight}, 0, 'to 0';
like $r[-1]{reason},
    qr/^ROLLBACK at once from 10% during the gradual rollback: critical/,
    'critical';
note "reason: $r[-1]{reason}";

$s->finish;

done_testing;
