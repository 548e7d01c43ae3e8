#!/usr/bin/perl

# Story: a cohort with the longest name nginx.conf and the plan take (63
# bytes) gets its weight.COHORT field, whole, from the sidecar.
#
# The field's name, "weight." and 63 bytes, is 70 bytes; the sidecar
# built it in a 64-byte buffer and wrote "weight." and the first 56
# bytes: a field no nginx has (logged, ignored), and the cohort never
# came on the canary.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use SidecarTest qw(fast_plan);

my $long = 'x' x 55 . 'internal';       # 63 bytes
my $cut = substr($long, 0, 56);

my $s = SidecarTest->new(name => 'cohort-long-name', nodes => 1,
                         split_conf => 'cohort $http_x_cohort; '
                                       . "cohort_weight $long 0;");
$s->start;
my $t = $s->t;
my $port = $s->port;

my $plan = fast_plan(
    stages => [
        { name => 'internal', weight => 0, cohorts => { $long => 100 },
          hold => '10m' },
        { name => 'all', weight => 100, hold => '0s' },
    ],
);

$s->traffic(clients => 2, rate => 20);
$s->sidecar(plan => $plan);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq 'internal' },
             30, 'the sidecar starts at stage internal')
    or $s->show_log;

is $s->hget("weight.$long"), '100', 'weight.COHORT of 63 bytes: 100';
is $s->redis('HEXISTS', $s->key, "weight.$cut"), '0',
    'no field of its first 56 bytes';

my $gen = $s->hget('generation');
$s->wait_for(sub {
    my $r = $t->get($port, '/canary_status?split=api');
    return 0 unless $r->{success};
    my $j = decode_json($r->{content})->{splits}{api};
    return ($j->{generation} // -1) == $gen && ($j->{cohorts}{$long} // -1)
                                               == 100;
}, 10, 'nginx routes the cohort at 100');

my $res = $t->route_many($port, [ map {
    { path => '/', headers => [ 'X-Tenant-Id' => "i-$_",
                                'X-Cohort' => $long ] }
} 1 .. 10 ], clients => 1);
my @stable = grep { ($_->{variant} // '') ne 'canary' } @$res;
ok !@stable, 'its tenants go to canary' or diag explain $stable[0];

$s->finish;

done_testing;
