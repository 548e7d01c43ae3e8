#!/usr/bin/perl

# Story: an operator steers single tenants with canary-ctl pin/unpin and
# pulls the whole canary with the kill switch.
#
#     kill switch (enabled 0) -> override headers -> cookie -> pin -> hash
#
# At weight 50, a tenant the hash sends to stable is pinned to canary and
# one it sends to canary is pinned to stable: both flip, with reason pin,
# and stay flipped at weight 0 and 100.  Pinning a tenant to the other
# side moves it; unpin gives it back to the hash.  An override header or
# the cookie still beats a pin.  "disable" sends every request to stable
# with reason disabled (pinned tenants and override headers included) and
# "enable" brings every decision back as it was.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(redis_split_conf status_json wait_until wait_nodes);

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(redis_split_conf($t, redis => "$redis interval=200ms",
                   split => [ 'override X-Force-Variant canary canary',
                              'override X-Force-Variant stable stable',
                              'cookie   canary_pref' ]),
               workers => 2);

$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

# ---- helpers -------------------------------------------------------------

sub ctl_ok { RedisStory::ctl_ok($redis, @_) }

sub status { status_json($t)->{splits}{app} }

sub route {
    my ($tenant, %h) = @_;

    return $t->route($port, '/', { 'X-Tenant-Id' => $tenant, %h });
}

sub is_route {
    my ($d, $side, $reason, $what) = @_;

    subtest $what => sub {
        is $d->{status}, 200, 'status 200';
        is $d->{variant}, $side, "variant $side";
        is $d->{side}, $side, "answered by the $side origin";
        is $d->{reason}, $reason, "reason $reason";
    };
}

my @tenants = map { "tenant-$_" } 1 .. 500;
my @hash_canary = grep { CanaryTest::is_canary('', $_, 50) } @tenants;
my @hash_stable = grep { !CanaryTest::is_canary('', $_, 50) } @tenants;

# always on the same side at 0 and 100 by the hash, so a flip is the pin
my $to_canary = $hash_stable[0];    # the hash says stable
my $to_stable = $hash_canary[0];    # the hash says canary
my $other = $hash_stable[1];        # never pinned

ctl_ok('set-weight', 'app', 50);
ok wait_until(3, sub { status()->{weight} == 50 }), 'weight 50 synced';

is_route(route($to_canary), 'stable', 'hash', "$to_canary: stable by hash");
is_route(route($to_stable), 'canary', 'hash', "$to_stable: canary by hash");

# ---- pins ------------------------------------------------------------------

my $t0 = time;
ctl_ok('pin', 'app', 'canary', $to_canary);
ctl_ok('pin', 'app', 'stable', $to_stable);

my $took = wait_until(3, sub {
    (route($to_canary)->{reason} // '') eq 'pin'
    && (route($to_stable)->{reason} // '') eq 'pin' });
ok defined $took, 'the pins apply';
diag sprintf "pins routed %.0fms after canary-ctl pin started",
             (time - $t0) * 1000;

is_route(route($to_canary), 'canary', 'pin', "$to_canary: pinned to canary");
is_route(route($to_stable), 'stable', 'pin', "$to_stable: pinned to stable");
is_route(route($other), 'stable', 'hash', "$other: not pinned, by hash");

is_deeply status()->{pins}, { stable => 1, canary => 1 },
    'status counts one pin on each side';

# a pin beats the hash at any weight
for my $w (0, 100) {
    ctl_ok('set-weight', 'app', $w);
    ok wait_until(3, sub { status()->{weight} == $w }), "weight $w synced";

    is_route(route($to_canary), 'canary', 'pin',
             "weight $w: $to_canary stays on canary");
    is_route(route($to_stable), 'stable', 'pin',
             "weight $w: $to_stable stays on stable");
    is_route(route($other), $w ? 'canary' : 'stable', 'hash',
             "weight $w: $other follows the weight");
}

ctl_ok('set-weight', 'app', 50);
ok wait_until(3, sub { status()->{weight} == 50 }), 'weight 50 synced';

# overrides and the cookie beat a pin
is_route(route($to_canary, 'X-Force-Variant' => 'stable'), 'stable',
         'header', 'an override header beats a pin to canary');
is_route(route($to_stable, 'X-Force-Variant' => 'canary'), 'canary',
         'header', 'an override header beats a pin to stable');
is_route(route($to_canary, 'Cookie' => 'canary_pref=never'), 'stable',
         'cookie', 'the cookie beats a pin to canary');
is_route(route($to_stable, 'Cookie' => 'canary_pref=always'), 'canary',
         'cookie', 'the cookie beats a pin to stable');

# pinning to the other side moves the tenant
ctl_ok('pin', 'app', 'stable', $to_canary);
ok wait_until(3, sub { (route($to_canary)->{variant} // '') eq 'stable' }),
    "$to_canary moved to stable";
is_route(route($to_canary), 'stable', 'pin', "$to_canary: pinned to stable");
is $t->redis_cli('SISMEMBER', 'canary:app:pin:canary', $to_canary), 0,
    'and no longer in the canary set';
is_deeply status()->{pins}, { stable => 2, canary => 0 },
    'status counts two pins on stable';

# many tenants pinned at once, in one write
my @batch = @hash_stable[10 .. 59];
ctl_ok('pin', 'app', 'canary', @batch);
ok wait_until(3, sub { status()->{pins}{canary} == 50 }), '50 pins apply';

my $res = $t->route_many($port, [ map { { path => '/', headers =>
    { 'X-Tenant-Id' => $_ } } } @batch ]);
is scalar(grep { $_->{side} eq 'canary' && $_->{reason} eq 'pin' } @$res),
    50, 'all 50 pinned tenants go to canary';

# ---- the kill switch ---------------------------------------------------------

$t0 = time;
ctl_ok('disable', 'app');

$took = wait_until(3, sub {
    (route($batch[0])->{reason} // '') eq 'disabled' });
ok defined $took, 'the kill switch applies';
diag sprintf "kill switch: every request on stable %.0fms after "
             . "canary-ctl disable started", (time - $t0) * 1000;

my $st = status();
is $st->{enabled}, JSON::PP::false, 'status enabled false';

is_route(route($batch[0]), 'stable', 'disabled', 'a tenant pinned to canary');
is_route(route($hash_canary[5]), 'stable', 'disabled',
         'a tenant the hash sends to canary');
is_route(route($hash_canary[6], 'X-Force-Variant' => 'canary'), 'stable',
         'disabled', 'a request with the canary override header');
is_route(route($hash_canary[7], 'Cookie' => 'canary_pref=always'), 'stable',
         'disabled', 'a request with the canary cookie');
is route($batch[0])->{weight}, 0, '$canary_weight is 0 while disabled';

# everybody, with every way of asking for canary
my @reqs;
for my $i (0 .. 399) {
    my %h = ('X-Tenant-Id' => $tenants[$i]);
    $h{'X-Force-Variant'} = 'canary' if $i % 4 == 1;
    $h{'Cookie'} = 'canary_pref=always' if $i % 4 == 2;
    push @reqs, { path => '/', headers => \%h };
}

$res = $t->route_many($port, \@reqs, clients => 2);
my @leaked = grep { $_->{side} ne 'stable' || $_->{reason} ne 'disabled' }
             @$res;
is scalar(@leaked), 0, 'all 400 requests on stable, reason disabled';

# pins can still be changed while disabled; they apply on enable
ctl_ok('unpin', 'app', $to_canary);

$t0 = time;
ctl_ok('enable', 'app');
ok wait_until(3, sub { (route($batch[0])->{reason} // '') eq 'pin' }),
    'enable applies';
diag sprintf "enable: decisions back %.0fms after canary-ctl enable started",
             (time - $t0) * 1000;

is status()->{enabled}, JSON::PP::true, 'status enabled true';
is_route(route($batch[0]), 'canary', 'pin', 'pins are back');
is_route(route($to_stable), 'stable', 'pin', 'on both sides');
is_route(route($to_canary), 'stable', 'hash', 'an unpinned tenant: hash');
is_route(route($hash_canary[6], 'X-Force-Variant' => 'canary'), 'canary',
         'header', 'override headers are back');

$res = $t->route_many($port, [ map { { path => '/', headers =>
    { 'X-Tenant-Id' => $_ } } } @tenants[100 .. 299] ]);
my %pinned = map { $_ => 1 } @batch, $to_stable;
my @wrong = grep {
    my $tn = $tenants[100 + $_];
    my $want = $pinned{$tn} ? ($tn eq $to_stable ? 'stable' : 'canary')
             : CanaryTest::is_canary('', $tn, 50) ? 'canary' : 'stable';
    $res->[$_]{side} ne $want } 0 .. $#$res;
is scalar(@wrong), 0, '200 tenants route as before the kill switch';

# ---- unpin -------------------------------------------------------------------

ctl_ok('unpin', 'app', $to_stable, @batch);
ok wait_until(3, sub { status()->{pins}{canary} == 0
                       && status()->{pins}{stable} == 0 }), 'all unpinned';
is_route(route($to_stable), 'canary', 'hash', "$to_stable: back to its hash");
is_route(route($batch[0]), 'stable', 'hash', "$batch[0]: back to its hash");

$t->stop;

done_testing;
