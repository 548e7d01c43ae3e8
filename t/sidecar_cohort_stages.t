#!/usr/bin/perl

# Story: a cohort rollout, internal -> friendly -> all, walked by
# canary-sidecar on the real stack, with the per-cohort counters in
# /canary_status (JSON and Prometheus) matching the requests sent.
#
# nginx has split "api" with "cohort $http_x_cohort" and cohort_weight
# internal 0 and friendly 0; "beta" is not one of its cohorts (a request
# of it is routed as a plain tenant's).  The plan:
#
#   internal  weight 0, cohorts {internal: 100}
#   friendly  weight 0, cohorts {internal: 100, friendly: 100}
#   all       weight 30 (cohorts as before)
#
# Background traffic of plain tenants gives stable its requests; at the
# first two stages only the cohorts reach the canary, so a stage cannot
# be promoted before this story sends its cohort's requests (min_requests
# 30 on each side): each stage's batch sends the ones that must go to
# stable first and checks that the stage has not moved, then the canary
# ones.  At each stage:
#
#   internal  internal on canary ($canary_reason cohort, weight 100);
#             friendly (cohort, weight 0), beta and plain tenants stable
#   friendly  internal and friendly on canary; beta, plain stable
#   all       internal and friendly on canary; beta and plain tenants by
#             their hash at 30 (the same tenants as the test computes)
#
# Every request a cohort's weight decided is tallied by cohort, variant
# and 5xx from its response; /canary_status' cohort_traffic and the
# Prometheus canary_cohort_requests_total / _responses_5xx_total give
# exactly those numbers (promtool-clean).  Then the canary fails: the
# first internal requests get 500s (counted as the cohort's 5xx), the
# sidecar rolls back, and its write sets weight.internal and
# weight.friendly to 0 with the weight: internal goes to stable
# (rolled_back, not a cohort's decision: not counted).
#
# Last, conf-examples/plan-cohorts.json passes canary-sidecar --once
# --dry-run, which would start it at its internal stage.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempfile);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'cohort-stages', nodes => 1,
                         canary_fault => 100,
                         split_conf => 'cohort $http_x_cohort; '
                                       . 'cohort_weight internal 0; '
                                       . 'cohort_weight friendly 0;');
$s->start;
my $t = $s->t;
my $port = $s->port;

my $plan = fast_plan(
    pins => [],
    stages => [
        { name => 'internal', weight => 0, cohorts => { internal => 100 },
          hold => '2s' },
        { name => 'friendly', weight => 0,
          cohorts => { internal => 100, friendly => 100 }, hold => '2s' },
        { name => 'all', weight => 30, hold => '10m' },
    ],
);
$plan->{slo}{min_requests} = 30;

# plain tenants (no X-Cohort): stable's requests at weight 0
$s->traffic(clients => 2, rate => 40, pinned_share => 0);
$s->sidecar(plan => $plan);

my %COHORT = (internal => 1, friendly => 1);   # nginx.conf's
my %tally;      # cohort -> variant -> { requests, 5xx }
my $n = 0;

for my $c (keys %COHORT) {
    for my $v (qw(stable canary)) {
        $tally{$c}{$v} = { requests => 0, '5xx' => 0 };
    }
}

sub status {
    my $r = $t->get($port, '/canary_status?split=api');
    return {} unless $r->{success};
    return decode_json($r->{content})->{splits}{api};
}

# sends one request per tenant, as cohort $c (undef: none); tallies what
# a cohort's weight decided; returns the decisions
sub send_as {
    my ($c, @tenants) = @_;

    my $res = $t->route_many($port, [ map {
        { path => '/', headers => [ 'X-Tenant-Id' => $_,
                                    defined $c ? ('X-Cohort' => $c) : () ] }
    } @tenants ], clients => 1);

    for my $d (@$res) {
        next unless defined $c && $COHORT{$c} && ($d->{reason} // '') eq
                                                  'cohort';
        $tally{$c}{$d->{variant}}{requests}++;
        $tally{$c}{$d->{variant}}{'5xx'}++ if $d->{status} >= 500;
    }

    return $res;
}

sub tenants { my ($p, $k) = @_; map { "$p-" . ++$n } 1 .. $k }

# every decision: variant $want, reason $why (a regexp), and the
# answering origin agrees
sub all_go {
    my ($res, $want, $why, $name) = @_;

    my @bad = grep { ($_->{variant} // '') ne $want
                     || ($_->{side} // '') ne $want
                     || ($_->{reason} // '') !~ $why } @$res;
    ok !@bad && @$res, "$name: all " . scalar(@$res) . " on $want"
        or diag explain $bad[0];
}

# the stage in Redis, applied by nginx (its generation, its cohorts)
sub at_stage {
    my ($name, %cohorts) = @_;

    return $s->wait_for(sub {
        my $st = $s->state_hash;
        return 0 unless ($st->{stage_name} // '') eq $name;
        my $gen = $s->hget('generation');
        my $j = status();
        return 0 unless ($j->{generation} // -1) == $gen;
        for my $c (keys %cohorts) {
            return 0 unless ($j->{cohorts}{$c} // -1) == $cohorts{$c};
        }
        return 1;
    }, 30, "the sidecar is at stage $name, applied by nginx")
        || ($s->show_log, 0);
}


# ---- internal: only the internal cohort --------------------------------

at_stage('internal', internal => 100, friendly => 0) or BAIL_OUT('no stage');
is $s->hget('weight.internal'), '100', 'weight.internal 100 in Redis';
is $s->hget('weight'), '0', 'with the stage weight 0';
my $gen = $s->hget('generation');

all_go(send_as('friendly', tenants('f', 40)), 'stable', qr/^cohort$/,
       'internal stage: friendly');
all_go(send_as('beta', tenants('b', 40)), 'stable', qr/^hash$/,
       'internal stage: beta (no such cohort)');
all_go(send_as(undef, tenants('p', 40)), 'stable', qr/^hash$/,
       'internal stage: plain tenants');
is $s->hget('generation'), $gen, 'still the internal stage';
all_go(send_as('internal', tenants('i', 40)), 'canary', qr/^cohort$/,
       'internal stage: internal');


# ---- friendly: internal and friendly -----------------------------------

at_stage('friendly', internal => 100, friendly => 100) or BAIL_OUT('stage');
is $s->hget('weight.friendly'), '100', 'weight.friendly 100 in Redis';
is $s->hget('weight'), '0', 'the weight stays 0';
$gen = $s->hget('generation');

all_go(send_as('beta', tenants('b', 40)), 'stable', qr/^hash$/,
       'friendly stage: beta');
all_go(send_as(undef, tenants('p', 40)), 'stable', qr/^hash$/,
       'friendly stage: plain tenants');
is $s->hget('generation'), $gen, 'still the friendly stage';
all_go(send_as('internal', tenants('i', 20)), 'canary', qr/^cohort$/,
       'friendly stage: internal');
all_go(send_as('friendly', tenants('f', 40)), 'canary', qr/^cohort$/,
       'friendly stage: friendly');


# ---- all: everyone by weight, the cohorts stay on ----------------------

at_stage('all', internal => 100, friendly => 100) or BAIL_OUT('no stage');
is $s->hget('weight'), '30', 'weight 30 in Redis';
is $s->hget('weight.internal'), '100', 'weight.internal stays 100';
is $s->hget('weight.friendly'), '100', 'weight.friendly stays 100';

all_go(send_as('internal', tenants('i', 20)), 'canary', qr/^cohort$/,
       'all stage: internal');
all_go(send_as('friendly', tenants('f', 20)), 'canary', qr/^cohort$/,
       'all stage: friendly');

for my $c (undef, 'beta') {
    my @ten = tenants(defined $c ? 'b' : 'p', 200);
    my $res = send_as($c, @ten);
    my (@wrong, %side);

    for my $i (0 .. $#ten) {
        my $want = CanaryTest::is_canary('', $ten[$i], 30) ? 'canary'
                                                           : 'stable';
        $side{$want}++;
        push @wrong, "$ten[$i]: $res->[$i]{variant}, not $want"
            if ($res->[$i]{variant} // '') ne $want
               || ($res->[$i]{reason} // '') ne 'hash';
    }

    my $who = defined $c ? 'beta' : 'plain tenants';
    ok !@wrong, "all stage: $who by their hash at 30"
        or diag join "\n", @wrong[0 .. ($#wrong > 4 ? 4 : $#wrong)];
    ok $side{canary} && $side{stable},
        "both sides have some ($side{canary} canary)";
}


# ---- the counters: exactly what was sent -------------------------------

sub json_counts {
    my $j = status();
    my %got;

    for my $c (@{$j->{cohort_traffic} || []}) {
        for my $v (qw(stable canary)) {
            $got{$c->{name}}{$v} = { requests => $c->{$v}{requests},
                                     '5xx' => $c->{$v}{'5xx'} };
        }
    }

    return \%got;
}

sub prom_text {
    my $r = $t->get($port, '/canary_status?format=prometheus');
    return $r->{content} // '';
}

sub prom_counts {
    my ($text) = @_;
    my %got;

    while ($text =~ /^canary_cohort_(requests|responses_5xx)_total
                     \{split="api",variant="(\w+)",cohort="(\w+)"\}
                     \ (\d+)$/mgx)
    {
        $got{$3}{$2}{$1 eq 'requests' ? 'requests' : '5xx'} = $4;
    }

    return \%got;
}

sub counters_match {
    my ($when, $weight) = @_;

    # the log phase runs as the response is sent: a moment after
    $s->wait_for(sub {
        JSON::PP->new->canonical->encode(json_counts())
        eq JSON::PP->new->canonical->encode(\%tally)
    }, 10, "$when: /canary_status has the counts");
    is_deeply json_counts(), \%tally, "$when: cohort_traffic is exact";

    my $prom = prom_text();
    is_deeply prom_counts($prom), \%tally,
        "$when: Prometheus' canary_cohort_*_total are exact";
    like $prom, qr/^canary_cohort_weight_percent\{split="api",
                   cohort="internal"\}\ $weight$/mx,
        "$when: and the weight of internal, $weight";

    SKIP: {
        skip 'promtool is not installed', 1 unless -x '/usr/bin/promtool';

        my ($fh, $file) = tempfile(DIR => $s->prefix);
        print $fh $prom;
        close $fh;

        my $out = `/usr/bin/promtool check metrics < $file 2>&1`;
        ok $? == 0 && $out eq '', "$when: promtool check metrics" or diag $out;
    }
}

cmp_ok $tally{internal}{canary}{requests}, '==', 80,
       'internal sent 80 to the canary';
cmp_ok $tally{friendly}{canary}{requests}, '==', 60,
       'friendly 60 to the canary';
cmp_ok $tally{friendly}{stable}{requests}, '==', 40, 'and 40 to stable';
counters_match('after the stages', 100);


# ---- a failing canary: 5xx counted, then the rollback takes them off ---

$s->stop_traffic;
$s->fault('fault_canary', 1);

# no canary error existed before: the first ones are the canary's
my $res = send_as('internal', tenants('i', 20));
ok grep({ $_->{status} == 500 && $_->{variant} eq 'canary' } @$res),
    'the failing canary answers internal with 500s';

$s->traffic(clients => 2, rate => 40, pinned_share => 0);
$s->wait_for(sub { $s->hget('state') eq 'rolled_back' }, 30,
             'the sidecar rolls back') or $s->show_log;

is $s->hget('weight'), '0', 'the rollback: weight 0';
is $s->hget('weight.internal'), '0', 'weight.internal 0 with it';
is $s->hget('weight.friendly'), '0', 'weight.friendly 0 with it';

$s->wait_for(sub {
    my $j = status();
    ($j->{cohorts}{internal} // -1) == 0 && ($j->{cohorts}{friendly} // -1) == 0
}, 10, 'nginx applies the cohorts at 0');

all_go(send_as('internal', tenants('i', 10)), 'stable', qr/^rolled_back$/,
       'rolled back: internal');

cmp_ok $tally{internal}{canary}{'5xx'}, '>', 0,
       "internal's 5xx on canary: $tally{internal}{canary}{'5xx'}";
$s->stop_traffic;
counters_match('after the rollback', 0);


# ---- conf-examples/plan-cohorts.json: accepted, a dry run starts it ----

$s->kill_sidecar('sidecar-a');
like $s->ctl('reset', 'api', '--reason', 'for the example'), qr/^reset api: /m,
    'reset for the example plan';

my ($rc, $out) = $s->run_sidecar($s->sidecar_args(
    plan_file => "$SidecarTest::ROOT/conf-examples/plan-cohorts.json",
    id => 'example', args => ['--dry-run', '--once']));
is $rc, 0, 'conf-examples/plan-cohorts.json: --once --dry-run exits 0'
    or diag $out;
like $out, qr/\[dry run\] api: start: stage internal \(0%\)/,
    'it would start at stage internal';
unlike $out, qr/warning: the first stage/,
    'no warning of a weight-0 first stage: its cohorts route';
is $s->hget('weight.internal'), '0', 'and wrote nothing';

$s->finish;

done_testing;
