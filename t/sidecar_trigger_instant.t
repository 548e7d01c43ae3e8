#!/usr/bin/perl

# Story: trigger tiers.  violation_for is 30s, but the plan's trigger
# for error_rate is instant.  At 5% the canary answers 500 to 20% of its
# requests (under the critical path: error_rate_max 50, so 3 x that is
# never reached): the sidecar rolls back on the first confirmed
# violation, without holding it, in far less than violation_for.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'trigger-instant', canary_fault => 20);
$s->start;
$s->traffic(clients => 3, rate => 100);

my $plan = fast_plan(violation_for => '30s');
$plan->{slo}{error_rate_max} = 50;
$plan->{stages}[1]{hold} = '1m';    # stay at 5%
$plan->{triggers} = { error_rate => { act => 'instant' } };

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '5_percent' },
             30, 'at the 5% stage')
    or $s->show_log;

my $on = $s->fault('fault_canary', 1);
my $zero;

$s->wait_for(sub {
    return 0 unless $s->hget('weight') eq '0';
    $zero = time;
}, 25, 'weight 0 after the canary went bad') or $s->show_log;

diag sprintf 'bad canary to weight 0: %.2fs', ($zero || time) - $on;
cmp_ok(($zero || time) - $on, '<', 25, 'well before violation_for (30s)');

is $s->hget('state'), 'rolled_back', 'rolled back';

my @r = $s->receipts;
is_deeply [map { $_->{operation} } @r[-2, -1]],
    [qw(sli_violation_detected rollback_executed)], 'receipts';
is $r[-1]{sli_checks}{error_rate_percent}{status}, 'FAIL', 'errors FAIL';
like $r[-1]{reason},
    qr/^ROLLBACK \(trigger error_rate instant\): error_rate_percent .* at once/,
    'rolled back at once by the instant trigger';
note "reason: $r[-1]{reason}";

# never held: no "VIOLATION ... for Xs/30s" line before it
unlike $s->sidecar_log, qr/VIOLATION error_rate_percent/,
    'the error violation was never held';

$s->finish;

done_testing;
