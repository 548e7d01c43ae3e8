#!/usr/bin/perl

# Story: a plan with per-stage SLOs.  The canary answers in 150ms (the
# slow origin), stable in about 1ms.  Relative to stable it is within
# the plan's margin (latency_p99_min_delta_ms 400: its p99 may be up to
# 400ms over stable's), but the plan also says "p95 under 50ms"
# (latency_p95_max_ms), and the first stage loosens that to 1000ms in its
# own "slo".  The sidecar promotes out of the first stage (PASS under its
# 1000ms) and rolls back at 5%, on the absolute limit alone: the canary's
# share of requests over 50ms, beyond chance over the 5% a p95 allows.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'slo-absolute', slow_ms => 150);
$s->start;
$s->fault('slow_canary', 1);
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan();
$plan->{slo}{latency_p99_min_delta_ms} = 400;
$plan->{slo}{latency_p95_max_ms} = 50;
$plan->{stages}[0]{slo} = { latency_p95_max_ms => 1000 };
$plan->{stages}[1]{hold} = '1m';    # stay at 5%

$s->sidecar(plan => $plan);

$s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 40,
             'rolled back') or $s->show_log;

my @r = $s->receipts;
my ($done) = grep { $_->{operation} eq 'canary_phase_complete' } @r;

ok $done, 'the first stage was promoted' or $s->show_log;
my $c0 = $done ? $done->{sli_checks}{latency_p95_max_ms} : {};
is $c0->{status}, 'PASS', 'first stage: latency_p95_max_ms PASS';
is $c0->{threshold}, 1000, 'under the stage\'s own 1000ms';
cmp_ok $c0->{canary} // 0, '>', 100, 'with a canary p95 over 100ms';

is_deeply [map { $_->{operation} } @r[-2, -1]],
    [qw(sli_violation_detected rollback_executed)], 'then a rollback';

my $rb = $r[-1];
is $rb->{from_stage}, '5_percent', 'at the 5% stage';
is $rb->{to_weight}, 0, 'to weight 0';

my $c = $rb->{sli_checks};
is $c->{latency_p95_max_ms}{status}, 'FAIL', 'latency_p95_max_ms FAIL';
is $c->{latency_p95_max_ms}{threshold}, 50, 'against the plan\'s 50ms';
cmp_ok $c->{latency_p95_max_ms}{canary}, '>', 50, 'canary p95 over 50ms';
cmp_ok $c->{latency_p95_max_ms}{p_value}, '<',
    $c->{latency_p95_max_ms}{alpha}, 'beyond chance (always-valid)';
cmp_ok $c->{latency_p95_max_ms}{events}{canary}, '>=', 50,
    'on many slow requests, not one';
is $c->{latency_p99_ms}{status}, 'PASS',
    'within the relative margin: latency_p99_ms PASS';
cmp_ok $c->{latency_p99_ms}{canary}, '<', $c->{latency_p99_ms}{threshold},
    'canary p99 under the relative bound';
is $c->{error_rate_percent}{status}, 'PASS', 'errors PASS';
ok !exists $c->{latency_p50_max_ms}, 'limits the plan does not set are '
    . 'not in the receipt';
like $rb->{reason}, qr/^ROLLBACK: latency_p95_max_ms [\d.]+ms > 50ms/,
    'the reason names the limit';
note "reason: $rb->{reason}";

like $s->sidecar_log, qr/latency_p95_max_ms 50: canary [\d.]+ms FAIL/,
    'the decision line shows the check';

$s->finish;

done_testing;
