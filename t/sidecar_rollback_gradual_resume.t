#!/usr/bin/perl

# Story: an operator pauses a gradual rollback, looks, and resumes it.
# At the 20% stage the canary turns slow (150ms against
# latency_p95_max_ms 50); the plan's "rollback": {"steps": [10, 5, 0],
# "step_hold": "3s"} writes 10%.  The slowness is fixed and the operator
# pauses the walk at once, then resumes it: the rollback was decided, so
# the walk goes on down, 5% then 0 (rolled_back).  It must not become a
# rollout running at 10% inside the 20% stage (its hold of 10 minutes
# would keep it there, and it would then promote to 50%).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'rollback-gradual-resume', slow_ms => 150);
$s->start;
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan();
$plan->{slo}{latency_p95_max_ms} = 50;
$plan->{stages}[2]{hold} = '10m';   # stay at 20%
$plan->{rollback} = { steps => [10, 5, 0], step_hold => '3s' };

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'at the 20% stage')
    or $s->show_log;

$s->fault('slow_canary', 1);

# every weight the split takes
my @seen;
my $watch = sub {
    my $w = $s->hget('weight');
    push @seen, $w if !@seen || $seen[-1] ne $w;
    return $w;
};

$s->wait_for(sub { $watch->() eq '10' }, 20, 'the first step: 10%')
    or $s->show_log;

# fixed; the operator stops the walk to look
$s->fault('slow_canary', 0);
note $s->ctl('pause', 'api');

$s->wait_for(sub { ($s->state_hash->{status} // '') eq 'paused' }, 5,
             'the sidecar knows it is paused')
    or $s->show_log;
$watch->();
sleep 1;
$watch->();

note $s->ctl('resume', 'api');

$s->wait_for(sub { $watch->() eq '0' }, 20,
             'resumed: the walk goes on down to 0')
    or $s->show_log;

is $seen[0], '20', 'from 20%';
is $seen[-1], '0', 'to 0';
my @up = grep { $seen[$_] > $seen[$_ - 1] } 1 .. $#seen;
is scalar(@up), 0, 'the weight never went up: ' . join(' ', @seen);
is $s->hget('state'), 'rolled_back', 'state rolled_back';
is $s->state_hash->{status}, 'rolled_back', 'the sidecar\'s status too';
like $s->sidecar_log,
    qr/resumed by operator: the gradual rollback goes on from (10|5)%/,
    'logged';

my @ops = map { $_->{operation} } grep { $_->{by} =~ /^sidecar/ }
          $s->receipts;
is $ops[-1], 'rollback_executed', 'the last receipt: rollback_executed';
ok !(grep { $_ eq 'traffic_promoted' } @ops[-3 .. -1]),
    'no promotion after the rollback began';

$s->finish;

done_testing;
