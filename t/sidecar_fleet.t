#!/usr/bin/perl

# Story: a fleet of two nginx shares one Redis; clients spread over both.
# canary-sidecar reads both canary_status pages and judges the sum
# (requests, errors and latency histograms added bucket by bucket).
# When one nginx goes away it says so and decides on the other; when
# none answers it holds, and never promotes blind, however long the hold
# has passed.
#
# The sum is checked exactly on the first stage: no traffic runs but
# this test's own requests, a known number to each nginx (stable
# tenants, some of them failing, and the pinned tenant on canary), so
# the receipt that ends the stage must state their sum over both nginx,
# and the p99 of the two histograms added bucket by bucket.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'fleet', nginx => 2, stable_fault => 10);
$s->start;

my $plan = fast_plan();
$plan->{stages}[0]{hold} = '3s';
$plan->{stages}[2]{hold} = '1s';

$s->sidecar(plan => $plan);

# ---- the first stage, on known requests only -------------------------------

$s->wait_for(sub { grep { $_ eq 'rollout_started' } $s->operations }, 10,
             'the rollout starts') or $s->show_log;
is_deeply(($s->receipts)[-1]{nginx}, { answered => 2, asked => 2 },
          'the start says it read both nginx');

# let it take a reading of both after the start, then send: nginx 1 gets
# stable tenants and the pinned one, healthy; nginx 2 the same with 10%
# of stable's answers 500
sleep 0.6;

my %sent;    # side => { requests, errors }
my @hist;    # nginx => side => cumulative latency counts

my @batches = ([0, 120, 40], [1, 80, 30]);

for my $b (@batches) {
    my ($i, $stable, $pinned) = @$b;
    my $t = $s->nginx($i);

    $s->fault('fault_stable', $i == 1);

    my @reqs = ((map { { path => '/', headers => ['X-Tenant-Id' => "t$_"] } }
                     1 .. $stable),
                (map { { path => '/', headers => ['X-Tenant-Id'
                                                  => $SidecarTest::PINNED] } }
                     1 .. $pinned));
    my $res = $t->route_many($t->port('http'), \@reqs, clients => 1);

    for my $d (@$res) {
        my $side = $d->{variant} // 'none';
        $sent{$side}{requests}++;
        $sent{$side}{errors}++ if $d->{status} == 500;
    }
}

$s->fault('fault_stable', 0);

is_deeply [sort keys %sent], [qw(canary stable)],
    "sent: stable $sent{stable}{requests} ($sent{stable}{errors} failed), "
    . "canary $sent{canary}{requests}";
$sent{$_}{errors} //= 0 for keys %sent;

$s->wait_for(sub { grep { $_ eq 'canary_phase_complete' } $s->operations },
             20, 'the first stage is complete') or $s->show_log;

my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
             $s->receipts;
$done ||= {};

is_deeply $done->{nginx}, { answered => 2, asked => 2 },
    'judged on both nginx';
is_deeply $done->{requests}, { stable => $sent{stable}{requests},
                               canary => $sent{canary}{requests} },
    'the stage\'s requests are the sum of what both nginx served';
is_deeply $done->{errors}, { stable => $sent{stable}{errors},
                             canary => $sent{canary}{errors} },
    'so are its errors';

# the latency histograms of both, added bucket by bucket (nothing else
# came to either nginx: their counters are this stage's)
my %sum;
my $le;

for my $i (0, 1) {
    my $t = $s->nginx($i);
    my $r = $t->get($t->port('http'), '/canary_status?split=api');
    my $v = decode_json($r->{content})->{splits}{api}{variants};

    for my $side (qw(stable canary)) {
        my $c = $v->{$side}{latency}{counts};
        $sum{$side}[$_] += $c->[$_] for 0 .. $#$c;
        $le = $v->{$side}{latency}{le_ms};
    }
}

for my $side (qw(stable canary)) {
    my $n = 0;
    $n += $_ for @{$sum{$side}};
    is $n, $sent{$side}{requests}, "$side: the nginx histograms hold the "
        . 'requests sent';
}

my $lat = $done->{sli_checks}{latency_p99_ms} || {};

for ([baseline => 'stable'], [canary => 'canary']) {
    my ($field, $side) = @$_;
    my $want = CanaryTest::quantile($sum{$side}, $le, 0.99);

    ok defined $want && defined $lat->{$field}
       && abs($lat->{$field} - $want) < 0.0015,
       "$side p99 over the stage " . ($lat->{$field} // 'none') . ' ms is '
       . 'that of both histograms added up: ' . ($want // 'none');
}

# ---- clients on both, then one nginx goes away ------------------------------

$s->traffic(clients => 4, rate => 80);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '20_percent' },
             20, 'at 20%') or $s->show_log;

my @r = $s->receipts;
is_deeply $r[-1]{nginx}, { answered => 2, asked => 2 },
    'judged on both nginx';

# each nginx sees part of the traffic
my $split = sub {
    my ($t) = @_;
    my $res = $t->get($t->port('http'),
                      '/canary_status?format=json&split=api&window=5');
    my $w = decode_json($res->{content})->{splits}{api}{variants};
    return $w->{stable}{window}{requests} + $w->{canary}{window}{requests};
};
my ($n1, $n2) = ($split->($s->nginx(0)), $split->($s->nginx(1)));
cmp_ok $n1, '>', 50, "nginx 1 has traffic ($n1 in 5s)";
cmp_ok $n2, '>', 50, "nginx 2 has traffic ($n2 in 5s)";

# one nginx goes away: decisions go on with the other
$s->stop_nginx(1);

$s->wait_for(sub { ($s->state_hash->{stage_name} // '') eq '50_percent' },
             20, 'promoted with one nginx of two') or $s->show_log;

like $s->sidecar_log, qr{api:\ 1/2\ nginx\ answered;
                          \ http://127\.0\.0\.1:\d+/canary_status:
                          \ Couldn't\ connect}x,
    'the log says which nginx did not answer';
is_deeply(($s->receipts)[-1]{nginx}, { answered => 1, asked => 2 },
          'the promotion says it saw one of two');

# none answers: hold, however long after the hold
$s->stop_traffic;
$s->stop_nginx(0);
my $n = () = $s->receipts;

sleep 3;
is scalar(() = $s->receipts), $n, 'no decision without any nginx';
is $s->hget('weight'), '50', 'still at 50%';
like $s->sidecar_log,
    qr{hold: no /canary_status answered; never promoting blind},
    'the log says why';

$s->finish;

done_testing;
