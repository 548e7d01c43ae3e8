#!/usr/bin/perl

# Story: a gradual rollback's step lowers the weight and leaves the
# cohorts as they are; it never writes the stage's cohorts again.
#
# nginx has cohort_weight internal 0.  The plan: stage "internal"
# (weight 0, cohorts {internal: 100}), then "20_percent" (weight 20, the
# cohorts as before), and "rollback": {"steps": [10, 0]} with a long
# step_hold.  At 20_percent an operator takes the internal cohort off
# the canary by hand (canary-ctl cohort api internal 0); then the canary
# turns slow (latency_p95_max_ms 50, not critical): the sidecar's first
# step writes weight 10 (rolling_back).  weight.internal stays 0: the
# step wrote its stage's map again, putting internal back on the
# failing canary at 100.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'cohort-rollback-step', slow_ms => 150,
                         split_conf => 'cohort $http_x_cohort; '
                                       . 'cohort_weight internal 0;');
$s->start;
my $t = $s->t;
$s->traffic(clients => 4, rate => 60);

my $plan = fast_plan(
    stages => [
        { name => 'internal', weight => 0, cohorts => { internal => 100 },
          hold => '2s' },
        { name => '20_percent', weight => 20, hold => '10m' },
    ],
);
$plan->{slo}{latency_p95_max_ms} = 50;
$plan->{rollback} = { steps => [10, 0], step_hold => '10m' };

$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             30, 'at the 20% stage')
    or $s->show_log;
is $s->hget('weight.internal'), '100', 'weight.internal 100 from the plan';

like $s->ctl('cohort', 'api', 'internal', '0', '--reason', 'off, by hand'),
    qr/^cohort internal api: \S+ -> 0% \(generation \d+\)$/m,
    'canary-ctl cohort: 0';
is $s->hget('weight.internal'), '0', 'weight.internal 0 by hand';

$s->fault('slow_canary', 1);

$s->wait_for(sub { $s->hget('weight') eq '10' }, 30, 'the first step: 10%')
    or $s->show_log;
is $s->hget('state'), 'rolling_back', 'state rolling_back';
is $s->hget('weight.internal'), '0',
    'the step left weight.internal at the operator\'s 0';

my $gen = $s->hget('generation');
$s->wait_for(sub {
    my $r = $t->get($s->port, '/canary_status?split=api');
    return 0 unless $r->{success};
    my $j = decode_json($r->{content})->{splits}{api};
    return ($j->{generation} // -1) == $gen;
}, 10, 'nginx applies the step');

my $r = $t->get($s->port, '/canary_status?split=api');
is decode_json($r->{content})->{splits}{api}{cohorts}{internal}, 0,
    'nginx keeps internal off the canary';

$s->finish;

done_testing;
