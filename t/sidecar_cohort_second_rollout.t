#!/usr/bin/perl

# Story: the next rollout of a split starts with its plan's later cohorts
# off the canary, whatever the rollout before left in Redis.
#
# The rollout before completed with weight.internal and weight.friendly
# at 100 (the state "complete" it leaves, written here), and an operator
# acknowledged it (canary-ctl reset: weight 0, the cohort weights stay).
# The new release's plan: stage "internal" (weight 0, cohorts
# {internal: 100}), then "friendly" ({internal: 100, friendly: 100}).
# At stage internal, only the internal cohort may reach the new canary:
# the sidecar's start writes weight.friendly 0, so a friendly tenant goes
# to stable.  (It wrote weight.internal only, and the friendly cohort
# went to the brand-new canary from the first stage on.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'cohort-second-rollout', nodes => 1,
                         split_conf => 'cohort $http_x_cohort; '
                                       . 'cohort_weight internal 0; '
                                       . 'cohort_weight friendly 0;');
$s->start;
my $t = $s->t;
my $port = $s->port;

sub status {
    my $r = $t->get($port, '/canary_status?split=api');
    return {} unless $r->{success};
    return decode_json($r->{content})->{splits}{api};
}

# the end of the rollout before, acknowledged
$s->redis('HSET', $s->key, 'weight', '100', 'weight.internal', '100',
          'weight.friendly', '100', 'state', 'complete', 'generation', '7',
          'updated_by', 'sidecar-old');
$s->wait_for(sub { (status()->{generation} // 0) == 7 }, 10,
             'nginx has the rollout before');
like $s->ctl('reset', 'api', '--reason', 'v1.2.3 is out'), qr/^reset api: /m,
    'canary-ctl reset';
is $s->hget('weight.friendly'), '100', 'reset leaves the cohorts';

my $plan = fast_plan(
    pins => [],
    stages => [
        { name => 'internal', weight => 0, cohorts => { internal => 100 },
          hold => '10m' },
        { name => 'friendly', weight => 0,
          cohorts => { internal => 100, friendly => 100 }, hold => '2s' },
    ],
);

$s->traffic(clients => 2, rate => 20, pinned_share => 0);
$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq 'internal' },
             30, 'the sidecar starts at stage internal')
    or $s->show_log;

is $s->hget('weight.internal'), '100', 'weight.internal 100';
is $s->hget('weight.friendly'), '0',
    'weight.friendly 0: friendly comes at its own stage';

my $gen = $s->hget('generation');
$s->wait_for(sub { (status()->{generation} // 0) == $gen }, 10,
             'nginx applies the start');

my $res = $t->route_many($port, [ map {
    { path => '/', headers => [ 'X-Tenant-Id' => "f-$_",
                                'X-Cohort' => 'friendly' ] }
} 1 .. 20 ], clients => 1);
my @canary = grep { ($_->{variant} // '') ne 'stable' } @$res;
ok !@canary, 'friendly tenants go to stable at stage internal'
    or diag explain $canary[0];

$s->finish;

done_testing;
