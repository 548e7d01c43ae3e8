#!/usr/bin/perl

# Story: one nginx's guard pulls the canary for the whole fleet, and only
# an operator puts it back.
#
# nginx A and nginx B share one Redis; the operator sets weight 50 with
# canary-ctl.  A's canary origin starts failing under A's traffic: A's
# guard trips, and A's syncing worker writes the trip to Redis in one
# MULTI/EXEC (weight 0, state guard_tripped, generation + 1, a receipt
# with operation guard_tripped) and PUBLISHes it: a SUBSCRIBE client sees
# it, and B, whose own canary is healthy, follows the trip: every request
# to stable, overrides and pins too.
# A stays tripped across a reload and after its canary recovers, and
# "canary-ctl set-weight" is refused while the state says guard_tripped;
# then "canary-ctl reset" writes a newer generation with state ready,
# which re-arms A's guard, and set-weight puts the operator's weight
# back: both route to canary again, and A's guard stays armed under
# traffic (the failures that tripped it are not counted again), even
# when it is re-armed within the second it tripped in.  When the canary
# fails for A and B at once, each whose own guard trips writes that trip
# (one that reads the other's trip first follows it) and both stay tripped:
# one nginx's trip is not an operator's write and does not re-arm the
# other (a tenant pinned to canary stays on stable).
#
# nginx C has no Redis: its guard trips the same way, and a reload is
# what re-arms it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $ta = CanaryTest->new(name => 'nginx A');
my $tb = CanaryTest->new(name => 'nginx B');
my $tc = CanaryTest->new(name => 'nginx C');

my $redis = '127.0.0.1:' . $ta->redis_start;

sub conf {
    my ($t, $with_redis) = @_;

    # a node name each: two nginx on one Redis (the fleet)
    my $redis_conf = $with_redis
        ? "canary_redis $redis interval=200ms timeout=300ms node="
          . ($t == $ta ? 'nginx-a' : 'nginx-b') . ';' : '';

    $t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    $redis_conf

${\ split_block('app', 'app_stable', 'app_canary', 50,
                'guard  error_rate=10 min_requests=20 window=10s',
                'override X-Canary-Opt-In true canary') }
${\ fault_origins($t) }
${\ front_server($t) }
EOF
}

# ---- helpers ---------------------------------------------------------------

sub ctl { canary_ctl($redis, @_) }

sub status { status_json($_[0])->{splits}{app} }

sub tripped { status($_[0])->{guard}{tripped} ? 1 : 0 }

# keep-alive clients on one instance, 300 tenants in turn (or one)
sub load_on {
    my ($t, $clients, $tenant) = @_;

    return Traffic->start(port => $t->port('http'), clients => $clients,
                          pause => 0.002, record => 1,
                          $tenant ? (tenant => $tenant) : (tenants => 300));
}

# the sides 300 tenants go to on an instance
sub sides {
    my ($t) = @_;

    my $res = $t->route_many($t->port('http'), [ map { { path => '/',
        headers => { 'X-Tenant-Id' => "t$_" } } } 0 .. 299 ]);
    my %n;
    $n{"$_->{side}/$_->{reason}"}++ for @$res;

    return \%n;
}

# ---- the fleet at 50% ------------------------------------------------------

conf($ta, 1);
conf($tb, 1);
conf($tc, 0);
$_->start for $ta, $tb, $tc;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 2), 'nginx reports split app';

my ($rc, $out) = ctl('set-weight', 'app', 50);
is $rc, 0, 'canary-ctl set-weight app 50' or diag $out;
ok wait_until(3, sub { status($ta)->{weight} == 50
                       && status($tb)->{weight} == 50 }), 'A and B at 50';

my $gen = $ta->redis_cli('HGET', 'canary:app', 'generation');
my $xlen = $ta->redis_cli('XLEN', 'canary:app:receipts');

my $sub_file = $ta->prefix . '/subscriber.out';
subscribe($ta, 'canary:app', $sub_file);
ok wait_until(3, sub { -s $sub_file }), 'a SUBSCRIBE client listens';

my $b_before = sides($tb);
cmp_ok $b_before->{'canary/hash'} // 0, '>', 100,
    "B sends $b_before->{'canary/hash'} of 300 tenants to canary";

# ---- A's canary fails ------------------------------------------------------

my $load = load_on($ta, 2);
sleep 1;

my $t_fault = time;
fault($ta, 1);

ok defined wait_until(5, sub { tripped($ta) }), "A's guard trips";
my $t_trip = time;

# the trip, in Redis
my $written = wait_until(3, sub {
    $ta->redis_cli('HGET', 'canary:app', 'state') eq 'guard_tripped' });
ok defined $written, 'the trip reaches Redis';

my %h = $ta->redis_cli('HGETALL', 'canary:app');
is $h{weight}, 0, 'Redis: weight 0';
is $h{state}, 'guard_tripped', 'Redis: state guard_tripped';
is $h{generation}, $gen + 1, 'Redis: generation raised by one';
like $h{updated_by}, qr/^nginx-guard:/, "Redis: updated_by $h{updated_by}";

is $ta->redis_cli('XLEN', 'canary:app:receipts'), $xlen + 1,
    'one receipt appended';
my @last = $ta->redis_cli('XREVRANGE', 'canary:app:receipts', '+', '-',
                          'COUNT', 1);
my $receipt = eval { decode_json($last[2]) } || {};
is $receipt->{operation}, 'guard_tripped', 'receipt: operation guard_tripped';
is $receipt->{split}, 'app', 'receipt: split app';
is $receipt->{from_weight}, 50, 'receipt: from weight 50';
is $receipt->{to_weight}, 0, 'receipt: to weight 0';
like $receipt->{reason} // '', qr/^error_rate/, 'receipt: the reason';
like $receipt->{by} // '', qr/^nginx-guard:/, 'receipt: by the guard';

ok wait_until(2, sub { my $s = '';
                       open my $fh, '<', $sub_file and local $/;
                       $s = <$fh> if $fh;
                       ($s // '') =~ /message\s+canary:app\s+guard_tripped/ }),
    'the SUBSCRIBE client saw the PUBLISH of the trip';

# B follows through Redis
my $b_took = wait_until(3, sub { weight_of($tb, 't1') eq '0' });
ok defined $b_took, 'B routes with weight 0';
diag sprintf "fleet: A tripped %.0fms after its canary began failing; the "
             . "trip was in Redis and B routed at weight 0 %.0fms after "
             . "that", ($t_trip - $t_fault) * 1000,
             (time - $t_trip) * 1000;

# weight 0 alone would leave pins, overrides and cookies on canary: B
# follows the trip itself, all the way
ok defined wait_until(2, sub { tripped($tb) }),
    "B's guard follows the trip it read from Redis";
like status($tb)->{guard}{reason} // '', qr/^tripped by nginx-guard:\S+ /,
    'B says whose trip it follows: ' . (status($tb)->{guard}{reason} // '');

my $b_after = sides($tb);
is_deeply $b_after, { 'stable/guard' => 300 },
    'B sends all 300 tenants to stable, by the guard';

my $b_opt = $tb->route($tb->port('http'), '/',
                       { 'X-Tenant-Id' => 't1', 'X-Canary-Opt-In' => 'true' });
is "$b_opt->{side}/$b_opt->{reason}", 'stable/guard',
    'B sends an opt-in override to stable too';

is scalar(log_lines($tb, qr/\[error\].*canary guard tripped for split "app": /
                         . qr/tripped by nginx-guard:/)), 1,
    'B logs the trip it follows once';

is scalar(log_lines($ta, qr/\[error\].*canary guard tripped for split "app"/)),
    1, 'A logs the trip once';
my $gen_trip = $gen + 1;
is scalar(log_lines($ta, qr/canary guard trip of split "app" written to /
                         . qr/\Q$redis\E as generation $gen_trip\b/)), 1,
    'A logs that it wrote the trip to Redis';

# ---- it stays pulled -------------------------------------------------------

$ta->reload;
is tripped($ta), 1, 'A is still tripped after a reload (it has Redis)';

fault($ta, 0);
sleep 1.5;
is tripped($ta), 1, 'A is still tripped after its canary recovered';
is status($ta)->{weight}, 0, 'A: weight 0 from Redis';

# ---- an operator re-arms it ------------------------------------------------

($rc, $out) = ctl('set-weight', 'app', 50);
is $rc, 2, 'canary-ctl set-weight app 50 is refused while tripped';
like $out, qr/guard tripped: canary-ctl reset first/, 'reset first, it says';
is $ta->redis_cli('HGET', 'canary:app', 'generation'), $gen + 1,
    'and writes nothing';

my $t_rearm = time;
($rc, $out) = ctl('reset', 'app', '--reason', 'canary fixed');
is $rc, 0, 'canary-ctl reset app: a newer generation, state ready'
    or diag $out;
($rc, $out) = ctl('set-weight', 'app', 50);
is $rc, 0, 'canary-ctl set-weight app 50' or diag $out;

my $rearmed = wait_until(2, sub { !tripped($ta) });
ok defined $rearmed, "A's guard is re-armed";
diag sprintf "re-arm: A's guard armed again %.0fms after canary-ctl "
             . "started", (time - $t_rearm) * 1000;

my $gen_rearm = $gen + 2;
is scalar(log_lines($ta, qr/\[notice\].*canary guard re-armed for split /
                         . qr/"app" by generation $gen_rearm\b/)), 1,
    'A logs the re-arm with the generation';

ok wait_until(2, sub { status($tb)->{weight} == 50 }), 'B back at 50';
ok defined wait_until(2, sub { !tripped($tb) }),
    "the operator's write re-arms B too";
my $b_back = sides($tb);
is $b_back->{'canary/hash'}, $b_before->{'canary/hash'},
    'B sends the same tenants to canary as before';

# A's traffic goes on, the canary healthy: the guard stays armed
sleep 2;
my $rec = $load->stop->{records};

is tripped($ta), 0, "A's guard stays armed: old failures are not counted";

my @fails = grep { $_->{status} == 500 } @$rec;
my @canary_after = grep { $_->{time} > $t_rearm + $rearmed + 0.2 } @$rec;
my $after_ok = grep { $_->{variant} eq 'canary' && $_->{status} == 200 }
               @canary_after;

cmp_ok scalar(@fails), '>', 0, scalar(@fails) . ' requests failed on A '
    . 'before the trip';
cmp_ok $after_ok, '>', 20, "$after_ok canary successes on A after the re-arm";
is scalar(grep { $_->{status} != 200 } @canary_after), 0,
    'no failure on A after the re-arm';
is scalar(grep { $_->{reason} eq 'guard' } @canary_after), 0,
    'and no request routed by the guard';

is scalar(log_lines($ta, qr/canary guard tripped for split/)), 1,
    'A logged one trip so far';

# ---- re-armed right after a trip -------------------------------------------

# The operator reacts at once: the canary is fixed and re-armed within
# the second it tripped in.  The failures before the re-arm must not
# count: the guard stays armed.
$load = load_on($ta, 2);
sleep 1;
sleep 0.01 while time - int(time) > 0.05;    # a second has just begun

my $gen_quick = $ta->redis_cli('HGET', 'canary:app', 'generation');
fault($ta, 1);
ok defined wait_until(3, sub { tripped($ta) }), "A's guard trips again";

# the operator sees the trip in Redis, fixes the canary, re-arms
ok defined wait_until(2, sub {
        $ta->redis_cli('HGET', 'canary:app', 'generation') > $gen_quick }),
    'the trip is written to Redis';
fault($ta, 0);

my $mark_quick = $ta->log_mark;
my $t_quick = time;
($rc, $out) = ctl('reset', 'app', '--reason', 'fixed at once');
is $rc, 0, 'canary-ctl reset app at once' or diag $out;
($rc, $out) = ctl('set-weight', 'app', 50);
is $rc, 0, 'canary-ctl set-weight app 50 at once' or diag $out;
ok defined wait_until(2, sub { $ta->log_since($mark_quick)
                               =~ /canary guard re-armed for split "app"/ }),
    'the write re-arms A';
diag sprintf "quick re-arm: A re-armed %.0fms after canary-ctl started, "
             . "%.0fms into the second it tripped in",
             (time - $t_quick) * 1000, ($t_quick - int($t_quick)) * 1000;

my $retripped = 0;
my $samples = sample_until($t_quick + 2, 0.1, sub {
    $retripped++ if tripped($ta) });

$load->stop;

my @again = log_lines($ta, qr/canary guard tripped for split "app"/,
                      $mark_quick);
is scalar(@again), 0, 'A does not trip again on the failures from before '
    . 'the re-arm' or diag $again[0];
is $retripped, 0, "A's guard stayed armed in all $samples samples after "
    . 'a quick re-arm (its canary is fine)'
    or diag "tripped in $retripped of $samples samples";
is $ta->redis_cli('HGET', 'canary:app', 'weight'), 50,
    "the operator's weight 50 stays in Redis";

# ---- the whole fleet sees the canary fail ----------------------------------

# a shared canary backend breaks: both A and B trip.  Each writes its
# trip; neither trip may re-arm the other's guard, and a tenant pinned to
# canary stays on stable everywhere.
sleep 1.1;
($rc, $out) = ctl('set-weight', 'app', 50);
is $rc, 0, 'canary-ctl set-weight app 50' or diag $out;
($rc, $out) = ctl('pin', 'app', 'canary', 'vip');
is $rc, 0, 'canary-ctl pin app canary vip' or diag $out;
ok wait_until(3, sub { !tripped($ta) && !tripped($tb)
                       && status($ta)->{pins}{canary} == 1
                       && status($tb)->{pins}{canary} == 1 }),
    'A and B armed, at 50, vip pinned to canary';

my $gen_before = $ta->redis_cli('HGET', 'canary:app', 'generation');
my $xlen_before = $ta->redis_cli('XLEN', 'canary:app:receipts');
# the traffic is the pinned tenant's: canary whatever the weight
my $la = load_on($ta, 1, 'vip');
my $lb = load_on($tb, 1, 'vip');
sleep 1;

fault($ta, 1);
fault($tb, 1);

my ($mark_a, $mark_b) = ($ta->log_mark, $tb->log_mark);
my $trip_re = qr/canary guard tripped for split "app"/;

ok defined wait_until(5, sub { $ta->log_since($mark_a) =~ $trip_re
                               && $tb->log_since($mark_b) =~ $trip_re }),
    'both guards trip';

# both trips are written to Redis meanwhile
sleep 0.3;

my ($untripped, $vip_canary) = (0, 0);

my $both = sample_until(time + 2, 0.1, sub {
    $untripped++ unless tripped($ta) && tripped($tb);

    for my $t ($ta, $tb) {
        my $d = $t->route($t->port('http'), '/', { 'X-Tenant-Id' => 'vip' });
        $vip_canary++ if $d->{variant} eq 'canary';
    }
});

$la->stop;
$lb->stop;
fault($ta, 0);
fault($tb, 0);

my $gen_after = $ta->redis_cli('HGET', 'canary:app', 'generation');
my $xlen_after = $ta->redis_cli('XLEN', 'canary:app:receipts');

is $untripped, 0, "both stayed tripped in all $both samples"
    or diag "one of them was re-armed in $untripped of $both samples";
is $vip_canary, 0, 'the tenant pinned to canary stayed on stable'
    or diag "vip went to the failing canary $vip_canary times";

# Each nginx whose own guard tripped writes its trip; one that read the
# other's trip first follows it and writes nothing (which of the two,
# or both, depends on a race of milliseconds).  Either way every own
# trip is in Redis once: a generation and a receipt each.
my %own;
my $trips_written = 0;

for my $n ([A => $ta, $mark_a], [B => $tb, $mark_b]) {
    my ($name, $t, $mark) = @$n;
    my $own = grep { !/tripped by nginx-guard:/ }
              log_lines($t, $trip_re, $mark);
    my $wrote = log_lines($t, qr/canary guard trip of split "app" written /
                              . qr/to \Q$redis\E as generation \d+/, $mark);

    is $wrote, $own, "$name: wrote its own trip to Redis once per own "
        . "trip ($own own, $wrote written)";
    $own{$name} = $own;
    $trips_written += $wrote;
}

cmp_ok $trips_written, '>=', 1, "$trips_written trip(s) written to Redis";
is $gen_after - $gen_before, $trips_written,
    'the generation went up once per trip written'
    or diag "generation went from $gen_before to $gen_after";
is $xlen_after - $xlen_before, $trips_written,
    'one receipt per trip written';
my @ops = map { /"operation":"(\w+)"/ ? $1 : '?' }
          grep { /^\{/ } $ta->redis_cli('XREVRANGE', 'canary:app:receipts',
                                       '+', '-', 'COUNT', $trips_written || 1);
is "@ops", join(' ', ('guard_tripped') x ($trips_written || 1)),
    'each of them guard_tripped';
diag sprintf "fleet trip: own trips A %d, B %d; %d written; generation "
             . "%d -> %d", $own{A}, $own{B}, $trips_written, $gen_before,
             $gen_after;

# ---- without Redis, a reload re-arms ---------------------------------------

my $c_load = load_on($tc, 2);
sleep 0.5;
fault($tc, 1);
ok defined wait_until(5, sub { tripped($tc) }), "C's guard trips";
fault($tc, 0);
my $c_rec = $c_load->stop->{records};

# (a second later, so that this does not depend on the re-arm's
# granularity, which the quick re-arm above checks)
sleep 1.2;
is tripped($tc), 1, 'C stays tripped after its canary recovered';

$tc->reload;
is tripped($tc), 0, 'a reload re-arms the guard of C (no Redis)';

my $c_sides = sides($tc);
cmp_ok $c_sides->{'canary/hash'} // 0, '>', 100,
    'C sends tenants to canary again';

# and it stays armed: the failures before the reload are not counted again
$c_load = load_on($tc, 2);
sleep 1.5;
$c_rec = $c_load->stop->{records};
is tripped($tc), 0, 'C stays armed under traffic after the reload';
is scalar(grep { $_->{status} != 200 } @$c_rec), 0, 'no failure on C';

$tc->stop;
$tb->stop;
$ta->stop;

done_testing;
