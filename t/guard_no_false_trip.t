#!/usr/bin/perl

# Story: the guard pulls a canary that is worse than stable, and nothing
# else.  Each scenario has its own split, all with
#     guard error_rate=10 min_requests=20 window=...;
# The origins fail a request when it carries "X-Fail: 1", and the
# override header X-Variant picks the side, so every window is exact.
#
#   both     both sides fail every request (a shared dependency is down):
#            the canary is not worse, no trip.  Steady traffic by hash.
#   stable   only stable fails: no trip.
#   ratio    canary 46% errors against stable 40% over 100 requests
#            each: not worse beyond chance, no trip; more canary failures
#            take it to 75%: trips.
#   worse    canary 60% against stable 40%, 100 requests each: worse
#            beyond chance (z = 2.8), trips.
#   few      19 canary requests, all failing (min_requests=20): no trip;
#            the 20th trips it.
#   aged     window=2s: 15 failures, 3 seconds later 15 more; never 20 in
#            one window, no trip.
#
# A split that does not trip logs nothing and keeps routing to canary.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $t = CanaryTest->new;
my $port = $t->port('http');

my @splits = qw(both stable ratio worse few aged);

my $split_conf = join "\n", map {
    split_block($_, 'app_stable', 'app_canary', 50,
                'override X-Variant canary canary',
                'override X-Variant stable stable',
                'guard  error_rate=10 min_requests=20 window='
                . ($_ eq 'aged' ? '2s' : '10s')) } @splits;

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 2m;

$split_conf
${\ fault_origins($t, stable => '$http_x_fail', canary => '$http_x_fail') }
${\ front_server($t, locations => [ map { ["/$_/", $_] } @splits ]) }
EOF

$t->start;

# ---- helpers -------------------------------------------------------------

sub status { status_json($t)->{splits} }

sub tripped {
    my ($split) = @_;

    return status()->{$split}{guard}{tripped} ? 1 : 0;
}

sub trip_lines {
    my ($split) = @_;

    return scalar log_lines($t, qr/canary guard tripped for split "$split"/);
}

# $n requests to a split on one side, $fail of them failing, spread
# evenly: the guard may look at any moment, every prefix has the rate.
# With $may_trip the guard may trip while they run: a request after the
# trip goes to stable for reason "guard" (and fails there too).
sub send_side {
    my ($split, $side, $n, $fail, $may_trip) = @_;

    my @reqs = map {
        my $fails = int($_ * $fail / $n) > int(($_ - 1) * $fail / $n);
        { path => "/$split/",
          headers => [ 'X-Variant' => $side, 'X-Tenant-Id' => "t$_",
                       $fails ? ('X-Fail' => 1) : () ] } } 1 .. $n;

    my $res = $t->route_many($port, \@reqs, clients => 1);

    my $bad = grep { !($may_trip && $_->{reason} eq 'guard'
                       && $_->{variant} eq 'stable')
                     && ($_->{variant} ne $side || $_->{reason} ne 'header'
                         || ($_->{status} == 200 && $_->{side} ne $side)) }
              @$res;
    my $failed = grep { $_->{status} == 500 } @$res;

    is "$bad/$failed", "0/$fail",
        "$split: $n requests to $side, $fail of them failed";
}

# the guard looks every 100ms: give it several looks
sub settle { sleep 0.5 }

# ---- both sides fail ------------------------------------------------------

{
    my $t0 = time;
    my ($n, %sides) = (0);

    # steady traffic by hash for 2 seconds, every request failing
    while (time - $t0 < 2) {
        my $res = $t->route_many($port, [ map { { path => '/both/',
            headers => [ 'X-Tenant-Id' => "t$_", 'X-Fail' => 1 ] } }
            1 .. 100 ]);

        $n += @$res;
        $sides{$_->{variant}}++ for @$res;
        ok 0, 'a request did not fail' if grep { $_->{status} != 500 } @$res;
        ok 0, 'both: tripped' if tripped('both');
    }

    settle();

    my $s = status()->{both};
    cmp_ok $sides{canary}, '>=', 20, "both: $sides{canary} of $n failing "
        . 'requests went to canary';
    cmp_ok $sides{stable}, '>=', 20, "both: $sides{stable} to stable";
    is $s->{guard}{tripped}, JSON::PP::false,
        'both: the guard does not trip when both sides fail';
    is trip_lines('both'), 0, 'both: nothing logged';
    note "both: canary window $s->{variants}{canary}{window}{requests} "
         . "requests, $s->{variants}{canary}{window}{'5xx'} 5xx";

    my $d = $t->route($port, '/both/', { 'X-Variant' => 'canary' });
    is $d->{side}, 'canary', 'both: canary still receives traffic';
}

# ---- only stable fails ----------------------------------------------------

send_side('stable', 'stable', 100, 100);
send_side('stable', 'canary', 100, 0);
settle();
is tripped('stable'), 0, 'stable: a failing stable does not trip the guard';
is trip_lines('stable'), 0, 'stable: nothing logged';

# ---- canary a little worse: chance, not a bad canary -----------------------

send_side('ratio', 'stable', 100, 40);
send_side('ratio', 'canary', 100, 46);
settle();
is tripped('ratio'), 0,
    'ratio: canary 46% against stable 40% errors does not trip';
is trip_lines('ratio'), 0, 'ratio: nothing logged';

send_side('ratio', 'canary', 120, 120, 1);
ok wait_until(2, sub { tripped('ratio') }, 0.05),
    'ratio: canary 75% against 40% trips it';
like status()->{ratio}{guard}{reason}, qr/stable 40\.0% of 100/,
    'ratio: the reason shows the stable rate it was compared to';

# ---- canary worse than stable beyond chance: trips ------------------------

send_side('worse', 'stable', 100, 40);
send_side('worse', 'canary', 100, 60, 1);
ok wait_until(2, sub { tripped('worse') }, 0.05),
    'worse: canary 60% against stable 40% errors trips it';
# it may trip before the last of the 100: every prefix fails about 60%
like status()->{worse}{guard}{reason},
    qr/^error_rate (5[5-9]|6[0-5])\.\d% > 10\.00% \(stable 40\.0% of 100\)/,
    'worse: the reason has the numbers: ' . status()->{worse}{guard}{reason};

# ---- fewer than min_requests ----------------------------------------------

send_side('few', 'canary', 19, 19);
settle();
is tripped('few'), 0, 'few: 19 failing canary requests (< 20) do not trip';
is trip_lines('few'), 0, 'few: nothing logged';

send_side('few', 'canary', 1, 1);
ok wait_until(2, sub { tripped('few') }, 0.05),
    'few: the 20th failing request trips it';
like status()->{few}{guard}{reason}, qr/20 canary requests/,
    'few: the reason counts 20 canary requests';

# ---- failures older than the window ---------------------------------------

send_side('aged', 'canary', 15, 15);
settle();
is tripped('aged'), 0, 'aged: 15 failures do not trip';

sleep 2.6;
send_side('aged', 'canary', 15, 15);
settle();
is tripped('aged'), 0,
    'aged: 15 more, 3 seconds later, with a 2s window: no trip';
is trip_lines('aged'), 0, 'aged: nothing logged';

is trip_lines('ratio') + trip_lines('few'), 2,
    'one line each for the two splits that tripped';

$t->stop;

done_testing;
