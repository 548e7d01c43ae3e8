#!/usr/bin/perl

# Story: trigger tiers.  The plan rolls back by default (on_violation
# rollback, violation_for 1s), but its trigger for latency_p95 is grace:
# "for" 3s, "then" pause.  At 5% the canary turns slow (150ms against a
# latency_p95_max_ms of 50): the sidecar sees the violation, waits the
# grace, and pauses the rollout instead of rolling it back; the weight
# stays at 5 and the state is paused.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'trigger-grace', slow_ms => 150);
$s->start;
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan();
$plan->{slo}{latency_p99_min_delta_ms} = 400;
$plan->{slo}{latency_p95_max_ms} = 50;
$plan->{stages}[1]{hold} = '1m';    # stay at 5%
$plan->{triggers} = {
    latency_p95 => { act => 'grace', for => '3s', then => 'pause' },
};

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '5_percent' },
             30, 'at the 5% stage')
    or $s->show_log;

my $on = $s->fault('slow_canary', 1);
my $paused;

$s->wait_for(sub {
    return 0 unless $s->hget('state') eq 'paused';
    $paused = time;
}, 30, 'paused after the canary got slow') or $s->show_log;

diag sprintf 'slow to paused: %.2fs', ($paused || time) - $on;
cmp_ok(($paused || 0) - $on, '>=', 3, 'not before the 3s grace');

sleep 1;
is $s->hget('state'), 'paused', 'still paused: no rollback';
is $s->hget('weight'), '5', 'weight stays 5';

my @r = $s->receipts;
is_deeply [map { $_->{operation} } @r[-2, -1]],
    [qw(sli_violation_detected rollout_paused)], 'receipts';
is $r[-1]{sli_checks}{latency_p95_max_ms}{status}, 'FAIL',
    'latency_p95_max_ms FAIL';
like $r[-1]{reason}, qr/^PAUSE \(trigger latency_p95 grace\): .*for \d/,
    'the reason names the trigger';
note "reason: $r[-1]{reason}";

# the violation was held while the grace ran
like $s->sidecar_log, qr/VIOLATION latency_p95_max_ms .* for [\d.]+s\/3s/,
    'the violation held for the grace';

$s->finish;

done_testing;
