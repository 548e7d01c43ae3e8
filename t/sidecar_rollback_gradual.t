#!/usr/bin/perl

# Story: a gradual rollback.  At the 20% stage the canary turns slow
# (150ms against latency_p95_max_ms 50; not critical).  The plan's
# "rollback": {"steps": [10, 5, 0], "step_hold": "2s"}: the sidecar
# writes 10% (state rolling_back, receipts sli_violation_detected and
# rollback_step), holds 2s, writes 5%, and 0 (rolled_back) 2s later.
# The sidecar is stopped in the middle of the walk and a new one goes on
# from the state it left in Redis.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use ReceiptSchema;
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'rollback-gradual', slow_ms => 150);
$s->start;
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan();
$plan->{slo}{latency_p95_max_ms} = 50;
$plan->{stages}[2]{hold} = '10m';   # stay at 20%
$plan->{rollback} = { steps => [10, 5, 0], step_hold => '2s' };

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'at the 20% stage')
    or $s->show_log;

$s->fault('slow_canary', 1);

# every weight the split takes, with when
my @seen;
my $watch = sub {
    my $w = $s->hget('weight');
    push @seen, [$w, time, $s->hget('state')]
        if !@seen || $seen[-1][0] ne $w;
    return $w;
};

$s->wait_for(sub { $watch->() eq '10' }, 20, 'the first step: 10%')
    or $s->show_log;
is $seen[-1][2], 'rolling_back', 'the split\'s state: rolling_back';
is $s->state_hash->{status}, 'rolling_back', 'the sidecar\'s status too';

# a restart in the middle of the walk
$s->kill_sidecar('sidecar-a');
$s->sidecar(plan => $plan, id => 'sidecar-b');

$s->wait_for(sub { $watch->() eq '0' }, 20, 'down to 0')
    or $s->show_log('sidecar-b');

is_deeply [map { $_->[0] } @seen], [qw(20 10 5 0)],
    'weights 20, 10, 5, 0 in order';
# (seen by polling, each seen up to a poll late: without the hold a step
# would follow the one before within an interval, 250ms)
cmp_ok $seen[2][1] - $seen[1][1], '>=', 1.5, '10% held step_hold (2s)';
cmp_ok $seen[3][1] - $seen[2][1], '>=', 1.5, '5% held step_hold (2s)';
is $s->hget('state'), 'rolled_back', 'state rolled_back at 0';
is $s->redis('SISMEMBER', $s->key . ':pin:canary', $SidecarTest::PINNED),
    '0', 'the test tenant is unpinned at the end';

my @r = $s->receipts;
my @ops = map { $_->{operation} } @r;
splice @ops, 0, @ops - 4;
is_deeply \@ops, [qw(sli_violation_detected rollback_step rollback_step
                     rollback_executed)], 'receipts of the walk';
is_deeply [map { [$_->{from_weight}, $_->{to_weight}] } @r[-3 .. -1]],
    [[20, 10], [10, 5], [5, 0]], 'each step\'s weights';
is $r[-3]{state}, 'rolling_back', 'a step\'s receipt: rolling_back';
is $r[-2]{by}, 'sidecar-b', 'the restarted sidecar went on';
like $r[-3]{reason}, qr/^ROLLING BACK: .*latency_p95_max_ms/, 'why';

# every receipt of the walk conforms: the last step's rollback_executed
# too, though each step restarted the stage's evidence (it had no
# detected_at, rollback_duration_ms, failed_checks), and sidecar-b took
# over mid-walk
my $schema = ReceiptSchema->load;
my @l = $s->redis('XRANGE', $s->key . ':receipts', '-', '+');
for my $text (map { $l[$_] } grep { $_ % 3 == 2 } 0 .. $#l) {
    my @err = $schema->validate($text);
    ok !@err, 'the receipt conforms: ' . substr($text, 0, 140)
        or diag join "\n", @err;
}
like $r[-4]{detected_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'the violation\'s receipt says when it was detected';
is $r[-1]{detected_at}, $r[-4]{detected_at},
    'the rollback, after a restart mid-walk: the same detection';
my %last = map { $_ => 1 } @{ $r[-1]{failed_checks} || [] };
ok $last{latency_p95_max_ms}
   && !grep({ !$last{$_} } @{ $r[-4]{failed_checks} || [] }),
    'and what failed then: '
    . join(', ', @{ $r[-4]{failed_checks} || [] }) . ' -> '
    . join(', ', sort keys %last);
cmp_ok $r[-1]{rollback_duration_ms}, '>=', 4000,
    'its duration: from then, over both step holds';
is $r[-1]{rollbacks_triggered}, 1, 'one rollback, however many steps';

$s->finish;

done_testing;
