#!/usr/bin/perl

# Story: a trickle of traffic gives the canary fewer requests than the
# plan's min_requests over the window.  canary-sidecar makes no judgement
# on it: long past the stage's hold it does not promote, and even when
# every canary answer is a 500 it does not roll back.  It logs why.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'trickle', canary_fault => 100);
$s->start;

# ~20 requests a second, 5% of them the pinned tenant: ~5 canary
# requests in a 5s window
$s->traffic(clients => 1, rate => 20, pinned_share => 0.05);

my $plan = fast_plan();
$plan->{stages}[0]{hold} = '1s';

$s->sidecar(plan => $plan);

$s->wait_for(sub { $s->hget('state') eq 'running' }, 10, 'started')
    or $s->show_log;

$s->fault('fault_canary', 1);

sleep 6;

# the trickle is random (5% of ~20 a second): on a loaded machine the
# pinned tenant may not have come yet; wait for one canary 500 (a longer
# wait only gives the sidecar more time to judge wrongly)
my $failed = $s->wait_for(sub { scalar grep { $_->[0] } $s->bad_responses },
                          20, 'a canary 500');

my $state = $s->state_hash;
is $state->{stage_name}, 'canary', 'still at the first stage';
is $s->hget('state'), 'running', 'not rolled back';
is $s->hget('weight'), '0', 'weight unchanged';
is_deeply [$s->operations], ['rollout_started'], 'no decision written';
ok $failed, 'the canary did fail';

my $log = $s->sidecar_log;
like $log, qr/too\ little\ traffic\ to\ judge
                \ \(canary\ n=\d+,\ stable\ n=\d+,\ min\ 50\ each\)/x,
    'the log says why';
unlike $log, qr/VIOLATION|ROLLBACK|PROMOTE/, 'no violation, no promotion';

$s->finish;

done_testing;
