#!/usr/bin/perl

# Story: a healthy canary is walked through every stage by canary-sidecar
# with real traffic on a real nginx.  The rollout starts with only the
# pinned test tenant on canary (weight 0), then 5 -> 20 -> 50 percent,
# each after its hold with every check passing; the last stage is manual,
# so the sidecar waits in awaiting_resume until an operator runs
# "canary-ctl resume", then goes to 100% and writes deployment_complete.
# Every decision is one receipt in the stream and in the receipts file,
# with the governor runbook's fields, and one log line with the numbers.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'walk');
$s->start;
$s->traffic(clients => 3, rate => 100);

my $t0 = time;
$s->sidecar(plan => fast_plan());

# the first stage: only the pinned tenant on canary
$s->wait_for(sub { $s->hget('state') eq 'running' }, 10, 'rollout started')
    or $s->show_log;

is $s->hget('weight'), '0', 'first stage: weight 0';
is $s->redis('SISMEMBER', $s->key . ':pin:canary',
             $SidecarTest::PINNED), '1', 'the test tenant is pinned';

sleep 0.5;    # nginx applies it within its 200ms poll
my @others = map { "tenant-$_" } 1 .. 200;
is_deeply $s->sides(@others), { stable => 200 },
    'every other tenant on stable';
is_deeply $s->sides(($SidecarTest::PINNED) x 5), { canary => 5 },
    'the pinned tenant on canary';

$s->wait_for(sub { $s->hget('state') eq 'awaiting_resume' }, 40,
             'walked to the manual gate')
    or $s->show_log;

is $s->hget('weight'), '50', 'waits at 50% before the manual stage';
is_deeply [$s->operations],
    [qw(rollout_started canary_phase_complete traffic_promoted
        traffic_promoted awaiting_resume)],
    'one receipt per decision so far';

# nothing happens at the gate without an operator
sleep 1.5;
is $s->hget('state'), 'awaiting_resume', 'still waiting a while later';

note $s->ctl('resume', 'api');

$s->wait_for(sub { $s->hget('state') eq 'complete' }, 10, 'completed')
    or $s->show_log;

note sprintf 'whole rollout: %.1fs', time - $t0;

is $s->hget('weight'), '100', 'weight 100';
is $s->redis('SISMEMBER', $s->key . ':pin:canary', $SidecarTest::PINNED),
    '0', 'the test pin is gone once complete';

sleep 0.5;
is_deeply $s->sides(@others), { canary => 200 }, 'every tenant on canary';

my @r = $s->receipts;
my @mine = grep { ($_->{by} || '') eq 'sidecar-a' } @r;

is_deeply [map { $_->{operation} } @r],
    [qw(rollout_started canary_phase_complete traffic_promoted
        traffic_promoted awaiting_resume rollout_resumed
        deployment_complete)],
    'receipts: the whole walk, the operator\'s resume among them';

is_deeply [map { "$_->{from_stage}>$_->{to_stage}" } @mine[1 .. 5]],
    [qw(canary>5_percent 5_percent>20_percent 20_percent>50_percent
        50_percent>100_percent 50_percent>100_percent)],
    'stages in order';

# awaiting_resume names the stage it gates: 100_percent, weight 100
is_deeply [map { $_->{to_weight} } @mine], [0, 5, 20, 50, 100, 100],
    'weights in order';
is $mine[4]{state}, 'awaiting_resume', 'the gate did not change the weight';

my @gens = map { $_->{generation} } @r;
is_deeply \@gens, [1 .. @r], 'each write raised the generation by one';

my $done = $mine[-1];

for my $f (qw(receipt_id timestamp operation split from_stage to_stage
              from_weight to_weight sli_checks requests window_seconds
              reason decision_ms generation by)) {
    ok exists $done->{$f}, "deployment_complete has $f";
}

like $done->{receipt_id}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/,
    'a uuid';
like $done->{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'ISO UTC';

for my $c (qw(latency_p99_ms error_rate_percent availability_percent)) {
    is $done->{sli_checks}{$c}{status}, 'PASS', "$c PASS";
    ok defined $done->{sli_checks}{$c}{$_}, "$c has $_"
        for qw(baseline canary threshold p_value);
}

cmp_ok $done->{requests}{canary}, '>=', 50, 'judged on enough canary data';
cmp_ok $done->{requests}{stable}, '>=', 50, 'and enough stable data';

# the receipts file: the sidecar's receipts, once each, in order
open my $fh, '<', $s->prefix . '/receipts.jsonl' or die;
my @file = map { JSON::PP::decode_json($_) } <$fh>;
close $fh;

is_deeply [map { $_->{receipt_id} } @file],
    [map { $_->{receipt_id} } @mine], 'the file has the same receipts';

my %state = %{$s->state_hash};
is $state{status}, 'complete', 'sidecar state: complete';
is $state{last_receipt}, $done->{receipt_id}, 'sidecar state: last receipt';
is $state{generation}, $done->{generation}, 'sidecar state: generation';

my $log = $s->sidecar_log;
like $log, qr/^\S+Z\ api\ stage\ 20_percent\ \(20%\):\ hold\ \S+\/2s;
              \ canary\ err\ [\d.]+%\ \(n=\d+\)
              \ vs\ stable\ [\d.]+%\ \(n=\d+\);
              \ p99\ [\d.]+ms\ vs\ [\d.]+ms$/mx,
    'a log line per decision with the numbers';
like $log, qr/operator: resumed by operator: may enter manual stage 100_/,
    'the resume is logged';
is scalar(() = $log =~ /rollout complete: nothing to do/g), 1,
    'a finished rollout is logged once, not every interval';

$s->finish;

done_testing;
