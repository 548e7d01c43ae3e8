#!/usr/bin/perl

# Story: the README's limits on pins, at their edges.
#
#   - 100,000 pinned tenants in one split (canary_zone 16m): every one is
#     routed by its pin, wherever it is in the set, and a tenant that is
#     not pinned still goes by the hash;
#   - the 100,001st: over the limit, logged once (the split, the count,
#     the limit), and the previous 100,000 pins stay in force; the new
#     tenant is not pinned; the sets are not read in full on every poll
#     to be refused again;
#   - a zone too small for the pins (canary_zone 1m, "about 25,000 pins
#     of 16-byte tenant ids"): 10,000 fit; 40,000 do not, which is
#     logged (the split, the count, the bytes, the zone), and the 10,000
#     stay in force.
#
# The pins are written straight into Redis's sets (an EVAL that adds
# them), then announced on the split's channel.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $MAX = 100_000;

my $t = CanaryTest->new(name => 'big zone');
my $ts = CanaryTest->new(name => 'small zone');

my $redis = '127.0.0.1:' . $t->redis_start;

for my $c ([$t, '16m', 'canary:'], [$ts, '1m', 'small:']) {
    my ($n, $size, $prefix) = @$c;

    $n->write_conf(
        "    canary_zone canary $size;\n"
        . "    canary_redis $redis interval=1s prefix=$prefix;\n\n"
        . split_block('app', 'stable_up', 'canary_up', 0)
        . "\n" . $n->origins . front_server($n), workers => 2);
    $n->start;
}

$t->allow_log(qr/canary_redis: split "app": \d+ pinned tenants, at most/);
$ts->allow_log(qr/canary_redis: split "app": no room for \d+ pinned/);

# nginx's slab allocator would log this [crit] on every poll while the
# pins do not fit
my $NOMEM = qr/\[crit\].*ngx_slab_alloc\(\) failed: no memory in canary_zone/;

# ---- helpers ---------------------------------------------------------------

# what Redis sent all its clients so far
sub out_bytes {
    my ($line) = grep { /^total_net_output_bytes:/ }
                      $t->redis_cli('INFO', 'stats');
    return $line =~ /:(\d+)/ ? $1 : die "no total_net_output_bytes";
}

# adds pinned tenants FROM .. TO (sprintf FORMAT) to PREFIX's canary set,
# then announces the change
sub pin_range {
    my ($prefix, $format, $from, $to) = @_;

    $t->redis_cli('EVAL', <<'LUA', 1, "${prefix}app:pin:canary", $format,
        for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do
            redis.call('SADD', KEYS[1], string.format(ARGV[1], i))
        end
        return redis.call('SCARD', KEYS[1])
LUA
                  $from, $to);
    $t->redis_cli('PUBLISH', "${prefix}app", 'pins');
}

sub pins_of {
    my ($n) = @_;

    my $s = status_json($n);

    return $s ? $s->{splits}{app}{pins}{canary} : -1;
}

# side/reason of each tenant, as nginx routes it now
sub routes {
    my ($n, @tenants) = @_;

    my $res = $n->route_many($n->port('http'),
        [ map { { path => '/', headers => ['X-Tenant-Id' => $_] } }
          @tenants ]);

    return map { ($_->{side} // '-') . '/' . ($_->{reason} // '-') } @$res;
}

sub all_are {
    my ($want, @got) = @_;

    return scalar grep { $_ ne $want } @got;
}

# ---- 100,000 pins ------------------------------------------------------------

my $t0 = time;
pin_range('canary:', 'pin-%06d', 1, $MAX);

my $took = wait_until(20, sub { pins_of($t) == $MAX }, 0.2);
ok defined $took, "nginx holds $MAX pins";
diag sprintf '%d pins in Redis to nginx: %.1fs', $MAX, time - $t0;

my @sample = map { sprintf 'pin-%06d', $_ }
             1, 2, 50_000, $MAX - 1, $MAX,
             map { 1 + int rand $MAX } 1 .. 300;

is all_are('canary/pin', routes($t, @sample)), 0,
    scalar(@sample) . ' pinned tenants from all over the set: canary by '
    . 'their pin';
is all_are('stable/hash', routes($t, map { "other-$_" } 1 .. 100)), 0,
    'tenants not pinned: stable by the hash (weight 0)';

# ---- one over the limit ------------------------------------------------------

my $mark = $t->log_mark;
pin_range('canary:', 'pin-%06d', $MAX + 1, $MAX + 1);

my $line = $t->wait_for_log(qr/canary_redis: split "app": /, 5, $mark);
like $line // '', qr/\[error\].*split "app": 100001 pinned tenants, at most (?#
                     )100000: the last good pins stay/,
    'over the limit: logged, with the count and the limit';

my $sent = out_bytes();
sleep 2.5;    # two more polls
$sent = out_bytes() - $sent;

is scalar(log_lines($t, qr/pinned tenants, at most/, $mark)), 1,
    'logged once, not on every poll';
# 100,001 members are 1.7 MB a read
cmp_ok $sent, '<', 200_000, "the sets over the limit are not read on "
    . "every poll: Redis sent $sent bytes in two polls";
is pins_of($t), $MAX, "the previous $MAX pins stay";
is all_are('canary/pin', routes($t, @sample)), 0, 'and route as before';
is((routes($t, sprintf 'pin-%06d', $MAX + 1))[0], 'stable/hash',
   'the tenant over the limit is not pinned');

# ---- a zone too small ------------------------------------------------------

# 16-byte tenant ids, as the README counts them
my $fmt = 'tenant-%09d';

pin_range('small:', $fmt, 1, 10_000);
ok wait_until(10, sub { pins_of($ts) == 10_000 }, 0.2),
    'the 1m zone holds 10,000 pins of 16 bytes';

$mark = $ts->log_mark;
pin_range('small:', $fmt, 10_001, 40_000);

$line = $ts->wait_for_log(qr/canary_redis: split "app": /, 5, $mark);
like $line // '', qr/\[error\].*split "app": no room for 40000 pinned (?#
                     )tenants \(\d+ bytes\) in canary_zone "canary": the (?#
                     )last good pins stay/,
    '40,000 do not fit: logged, with the count, the bytes and the zone';

sleep 2.5;
is scalar(log_lines($ts, qr/no room for \d+ pinned/, $mark)), 1,
    'that error is logged once, not on every poll';

is scalar(log_lines($ts, $NOMEM, $mark)), 0,
    'no [crit] line from the slab allocator';
is pins_of($ts), 10_000, 'the previous 10,000 pins stay';
is all_are('canary/pin', routes($ts, map { sprintf $fmt, $_ }
                                     1, 5000, 10_000)), 0,
    'and route as before';
is all_are('stable/hash', routes($ts, map { sprintf $fmt, $_ }
                                      10_001, 20_000, 40_000)), 0,
    'the ones that did not fit are not pinned';

$ts->stop;
$t->stop;

done_testing;
