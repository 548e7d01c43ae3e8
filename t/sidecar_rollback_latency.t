#!/usr/bin/perl

# Story: at the 5% stage the canary becomes 200ms slower (its requests go
# through a server that sleeps) while it still answers 200.  No error
# check can see it; canary-sidecar rolls it back on latency: the canary's
# p99 over the stage is over 1.5 x stable's, and the always-valid test
# says more of its requests are over that bound than stable's, at 99%.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'rollback-latency', slow_ms => 200);
$s->start;
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan();
$plan->{stages}[1]{hold} = '1m';    # stay at 5%

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '5_percent' },
             30, 'at the 5% stage')
    or $s->show_log;

sleep 1;
is $s->hget('state'), 'running', 'running, healthy so far';

my $on = $s->fault('slow_canary', 1);
my $zero;

$s->wait_for(sub {
    return 0 unless $s->hget('weight') eq '0';
    $zero = time;
}, 30, 'weight 0 after the canary got slow') or $s->show_log;

diag sprintf 'canary 200ms slower to weight 0: %.2fs', ($zero || time) - $on;

is $s->hget('state'), 'rolled_back', 'rolled back';
# (the clients log failed connects and timeouts too, as status 0)
my @bad = grep { $_->[0] >= $on } $s->bad_responses;
is scalar(@bad), 0, 'no client saw an error: it was only slow'
    or diag explain [ @bad[0 .. ($#bad < 4 ? $#bad : 4)] ];

my @r = $s->receipts;
is_deeply [map { $_->{operation} } @r[-2, -1]],
    [qw(sli_violation_detected rollback_executed)], 'receipts';

my $c = $r[-1]{sli_checks};
is $c->{latency_p99_ms}{status}, 'FAIL', 'latency FAIL';
cmp_ok $c->{latency_p99_ms}{canary}, '>', 150, 'canary p99 over 150ms';
cmp_ok $c->{latency_p99_ms}{baseline}, '<', 50, 'stable p99 under 50ms';
cmp_ok $c->{latency_p99_ms}{canary}, '>', $c->{latency_p99_ms}{threshold},
    'over the threshold';
cmp_ok $c->{latency_p99_ms}{p_value}, '<', $c->{latency_p99_ms}{alpha},
    'more of its requests over the bound than stable\'s, beyond chance';
cmp_ok $c->{latency_p99_ms}{alpha}, '<=', 0.01, 'at the plan\'s confidence';
is $c->{error_rate_percent}{status}, 'PASS', 'errors PASS';
like $r[-1]{reason}, qr/latency_p99_ms/, 'the reason names latency';
note "reason: $r[-1]{reason}";

sleep 0.5;
is_deeply $s->sides(map { "tenant-$_" } 1 .. 200),
    { stable => 200 }, 'every tenant on stable';

$s->finish;

done_testing;
