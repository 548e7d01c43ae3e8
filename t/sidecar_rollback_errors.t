#!/usr/bin/perl

# Story: at the 20% stage the canary starts answering 500 to 5% of its
# requests.  canary-sidecar sees the canary's error rate significantly
# above stable's, holds the violation for violation_for, and rolls back
# on its own: weight 0 in Redis, state rolled_back, the pinned test tenant
# unpinned, receipts sli_violation_detected then rollback_executed, and
# nginx sends every tenant to stable.  The test prints the seconds from
# the first bad response to weight 0.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'rollback-errors', canary_fault => 5);
$s->start;
$s->traffic(clients => 3, rate => 100);

my $plan = fast_plan();
$plan->{stages}[2]{hold} = '1m';    # stay at 20%

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' }, 30,
             'at the 20% stage')
    or $s->show_log;

sleep 1;
is $s->hget('weight'), '20', 'weight 20';
is $s->hget('state'), 'running', 'running, healthy so far';

my $on = $s->fault('fault_canary', 1);
my $zero;

$s->wait_for(sub {
    return 0 unless $s->hget('weight') eq '0';
    $zero = time;
}, 30, 'weight 0 after the canary went bad') or $s->show_log;

my @bad = grep { $_->[0] >= $on } $s->bad_responses;
ok @bad, 'clients saw 5xx from the canary';

my $first = @bad ? $bad[0][0] : $on;
my $took = ($zero || time) - $first;

diag sprintf 'first bad response to weight 0: %.2fs', $took;
cmp_ok $took, '<', 10, 'rolled back within 10 seconds';

is $s->hget('state'), 'rolled_back', 'state rolled_back';
is $s->hget('updated_by'), 'sidecar-a', 'written by the sidecar';
is $s->redis('SISMEMBER', $s->key . ':pin:canary', $SidecarTest::PINNED),
    '0', 'the test tenant is no longer pinned to canary';

my @r = $s->receipts;
is_deeply [map { $_->{operation} } @r[-2, -1]],
    [qw(sli_violation_detected rollback_executed)],
    'receipts: sli_violation_detected, then rollback_executed';

my $rb = $r[-1];
is $rb->{from_stage}, '20_percent', 'from the 20% stage';
is $rb->{from_weight}, 20, 'from weight 20';
is $rb->{to_weight}, 0, 'to weight 0';
is $rb->{generation}, $r[-2]{generation}, 'both in one write';
is $rb->{sli_checks}{error_rate_percent}{status}, 'FAIL', 'errors FAIL';
cmp_ok $rb->{sli_checks}{error_rate_percent}{canary}, '>',
    $rb->{sli_checks}{error_rate_percent}{threshold},
    'canary error rate over the threshold';
cmp_ok $rb->{sli_checks}{error_rate_percent}{p_value}, '<', 0.01,
    'significant at 99%';
like $rb->{reason}, qr/^ROLLBACK: .*error_rate_percent/, 'reason';
note "reason: $rb->{reason}";

# nginx applies weight 0 and the unpin at once (PUBLISH)
sleep 0.5;
my @tenants = map { "tenant-$_" } 1 .. 300;
is_deeply $s->sides(@tenants, $SidecarTest::PINNED),
    { stable => 301 }, 'nginx sends every tenant to stable';

# and the sidecar leaves it there
my $n = @r;
sleep 1.5;
is scalar($s->receipts), $n, 'no receipt after the rollback';
is $s->hget('weight'), '0', 'still weight 0';

$s->finish;

done_testing;
