#!/usr/bin/perl

# Story: whatever lands in Redis, nginx keeps routing with the last good
# value.  Starting from weight 40 written by canary-ctl, one bad value
# after another is written straight into the hash canary:app (as a buggy
# script or a typo would) and announced with PUBLISH.  Each one is
# rejected with exactly one error-log line naming the key, the field and
# the value, even though the syncing worker re-reads the hash on every
# poll (100ms here) meanwhile; routing and the status page keep the last
# good value.  Then: a write with a generation older than the one applied
# is ignored, a weight for a cohort nginx.conf does not know is ignored,
# a state over 64 bytes or not printable is refused, and a pinned tenant
# over 256 bytes is ignored while the others apply.  A value is logged
# escaped: a newline in it cannot forge a line of the error log.  Last, a
# hash with many unknown fields at once is still logged once per field.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;
use RedisStory qw(:all);

my $KEY = 'canary:app';

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(redis_split_conf($t,
                   redis => "$redis interval=100ms timeout=200ms",
                   split => [ 'cohort $http_x_cohort',
                              'cohort_weight beta 10' ]),
               workers => 2);

$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

# ---- helpers -------------------------------------------------------------

sub ctl { canary_ctl($redis, @_) }

sub status { status_json($t)->{splits}{app} }

# tenants on each side of 40%, and of 10% for the beta cohort
my @tenants = map { "tenant-$_" } 1 .. 400;
my ($in40) = grep { CanaryTest::is_canary('', $_, 40)
                    && !CanaryTest::is_canary('', $_, 10) } @tenants;
my ($out40) = grep { !CanaryTest::is_canary('', $_, 77) } @tenants;

# routing at weight $w: the weight, and a tenant each side of it
sub routes_at {
    my ($w, $what) = @_;

    my $in = $t->route($port, '/', { 'X-Tenant-Id' => $in40 });
    my $o = $t->route($port, '/', { 'X-Tenant-Id' => $out40 });

    subtest "$what: routing still at weight $w" => sub {
        is $in->{weight}, $w, "\$canary_weight $w";
        is $in->{side}, CanaryTest::is_canary('', $in40, $w)
            ? 'canary' : 'stable', "$in40 (bucket $in->{bucket})";
        is $o->{side}, 'stable', "$out40 (bucket $o->{bucket})";
        is status()->{weight}, $w, "status weight $w";
    };
}

my ($rc, $out) = ctl('set-weight', 'app', 40);
is $rc, 0, 'canary-ctl set-weight app 40' or diag $out;
($rc, $out) = ctl('resume', 'app');
is $rc, 0, 'canary-ctl resume app (state running)' or diag $out;

ok wait_until(3, sub { status()->{state} eq 'running' }), 'synced';
routes_at(40, 'baseline');

my $gen = status()->{generation};
is $gen, 2, 'generation 2 after two writes';

# ---- bad weights and enabled ---------------------------------------------

my $mb = 'x' x (1024 * 1024);

my @bad = (
    [ weight  => 'abc',   'letters' ],
    [ weight  => '101',   'over 100' ],
    [ weight  => '-1',    'negative' ],
    [ weight  => '5.555', 'three decimals' ],
    [ weight  => '',      'empty' ],
    [ weight  => ' 7',    'a leading space' ],
    [ weight  => '1e1',   'an exponent' ],
    [ weight  => $mb,     'a 1 MB string' ],
    [ enabled => 'maybe', 'enabled maybe' ],
    [ enabled => '2',     'enabled 2' ],
    [ colour  => 'blue',  'an unknown field' ],
);

for my $case (@bad) {
    my ($field, $value, $what) = @$case;

    my $mark = $t->log_mark;

    if (length $value > 1000) {
        # too long for a command line: Redis builds it
        $t->redis_cli('EVAL', "return redis.call('HSET', KEYS[1], ARGV[1],"
                      . " string.rep('x', tonumber(ARGV[2])))", 1, $KEY,
                      $field, length $value);
    } else {
        $t->redis_cli('HSET', $KEY, $field, $value);
    }

    $t->redis_cli('PUBLISH', $KEY, 'bad');

    my $shown = length $value > 64 ? substr($value, 0, 64) . '"...'
                                   : "$value\"";
    my $re = qr/\[error\].*split "app": rejected field "\Q$field\E" value "/
             . qr/\Q$shown\E.*\(${\ length $value} bytes\) of key "\Q$KEY\E"/;

    ok wait_until(3, sub { log_lines($t, $re, $mark) }), "$what: logged";

    # eight polls re-read the bad value meanwhile
    sleep 0.8;

    my @all = log_lines($t, qr/rejected field "\Q$field\E"/, $mark);
    is scalar(@all), 1, "$what: logged once across polls"
        or diag scalar(@all) . " lines, the first: $all[0]";

    routes_at(40, $what);

    is status()->{enabled}, JSON::PP::true, "$what: still enabled"
        if $field eq 'enabled';

    # the hash holds good values again
    $t->redis_cli('HDEL', $KEY, $field) unless $field eq 'weight';
}

# a value is not trusted to be one line: it must not forge log lines
{
    my $mark = $t->log_mark;
    my $forged = "2026/01/01 00:00:00 [notice] 1#1: forged by a value";

    $t->redis_cli('HSET', $KEY, 'weight', "1\n$forged");
    $t->redis_cli('PUBLISH', $KEY, 'bad');

    ok wait_until(3, sub {
            log_lines($t, qr/rejected field "weight"/, $mark) }),
        'a weight with a newline: logged';
    sleep 0.5;

    my @forged = log_lines($t, qr/^\Q$forged\E/, $mark);
    is scalar(@forged), 0,
        'a weight with a newline: it forges no line of the error log'
        or diag "forged: $forged[0]";

    routes_at(40, 'a weight with a newline');
}

$t->redis_cli('HSET', $KEY, 'weight', 40);

# a good value still applies after all that
$t->redis_cli('HSET', $KEY, 'weight', 33);
$t->redis_cli('PUBLISH', $KEY, 'good');
ok wait_until(3, sub { status()->{weight} == 33 }),
    'a good weight applies after the bad ones';
$t->redis_cli('HSET', $KEY, 'weight', 40);
$t->redis_cli('PUBLISH', $KEY, 'good');
ok wait_until(3, sub { status()->{weight} == 40 }), 'and back to 40';

# ---- a stale generation --------------------------------------------------

{
    my $mark = $t->log_mark;

    # an old writer, a delayed replica: generation 1, weight 77
    $t->redis_cli('HSET', $KEY, qw(generation 1 weight 77 state stale));
    $t->redis_cli('PUBLISH', $KEY, 'stale');

    my $re = qr/\[warn\].*split "app": ignored a stale write, /
             . qr/generation 1 is older than $gen/;

    ok wait_until(3, sub { log_lines($t, $re, $mark) }), 'stale write: logged';
    sleep 0.8;
    is scalar(log_lines($t, qr/stale write/, $mark)), 1,
        'stale write: logged once across polls';

    routes_at(40, 'stale write');

    my $s = status();
    is $s->{generation}, $gen, "stale write: generation stays $gen";
    is $s->{state}, 'running', 'stale write: no field of it applies';

    # the next writer goes on from the newest generation
    $t->redis_cli('HSET', $KEY, 'generation', $gen, qw(weight 40
                  state running));
    ($rc, $out) = ctl('set-weight', 'app', 40);
    is $rc, 0, 'canary-ctl set-weight app 40 over it' or diag $out;
    ok wait_until(3, sub { status()->{generation} == $gen + 1 }),
        'a newer generation applies';
    $gen++;
}

# ---- cohorts ---------------------------------------------------------------

{
    my $mark = $t->log_mark;

    $t->redis_cli('HSET', $KEY, 'weight.beta', 30, 'weight.gamma', 50);
    $t->redis_cli('PUBLISH', $KEY, 'cohorts');

    ok wait_until(3, sub { status()->{cohorts}{beta} == 30 }),
        'weight.beta 30 applies to the configured cohort';

    my $re = qr/\[error\].*split "app": ignored "weight\.gamma": /
             . qr/no such cohort_weight in nginx\.conf/;
    ok wait_until(3, sub { log_lines($t, $re, $mark) }),
        'weight.gamma: logged';
    sleep 0.8;
    is scalar(log_lines($t, qr/weight\.gamma/, $mark)), 1,
        'weight.gamma: logged once across polls';

    my $s = status();
    is_deeply $s->{cohorts}, { beta => 30 }, 'no cohort gamma appears';

    my $beta = $t->route($port, '/', { 'X-Tenant-Id' => $in40,
                                       'X-Cohort' => 'beta' });
    is $beta->{reason}, 'cohort', 'a beta request goes by its cohort';
    is $beta->{weight}, 30, 'at 30';

    my $gamma = $t->route($port, '/', { 'X-Tenant-Id' => $in40,
                                        'X-Cohort' => 'gamma' });
    is $gamma->{reason}, 'hash', 'a gamma request goes by the split weight';
    is $gamma->{weight}, 40, 'at 40';

    $mark = $t->log_mark;
    $t->redis_cli('HSET', $KEY, 'weight.beta', '12.345');
    $t->redis_cli('PUBLISH', $KEY, 'cohorts');

    my $re_beta = qr/rejected field "weight\.beta" value "12\.345"/;
    ok wait_until(3, sub { log_lines($t, $re_beta, $mark) }),
        'weight.beta 12.345: logged';
    is status()->{cohorts}{beta}, 30, 'weight.beta stays 30';

    $t->redis_cli('HDEL', $KEY, 'weight.beta', 'weight.gamma');
}

# ---- state ---------------------------------------------------------------

for my $case ([ 'z' x 65, 'state of 65 bytes' ],
              [ "bad\x01state", 'state with a control byte' ],
              [ "caf\xc3\xa9", 'state with UTF-8' ])
{
    my ($value, $what) = @$case;

    my $mark = $t->log_mark;

    $t->redis_cli('HSET', $KEY, 'state', $value);
    $t->redis_cli('PUBLISH', $KEY, 'state');

    ok wait_until(3, sub { log_lines($t, qr/rejected field "state"/, $mark) }),
        "$what: logged";
    sleep 0.6;
    is scalar(log_lines($t, qr/rejected field "state"/, $mark)), 1,
        "$what: logged once across polls";
    is status()->{state}, 'running', "$what: state stays running";
}

$t->redis_cli('HSET', $KEY, 'state', 's' x 64);
$t->redis_cli('PUBLISH', $KEY, 'state');
ok wait_until(3, sub { status()->{state} eq 's' x 64 }),
    'a state of exactly 64 bytes applies';

# ---- pins ----------------------------------------------------------------

{
    my $long = 'p' x 300;
    my $max = 'q' x 256;
    my $mark = $t->log_mark;

    $t->redis_cli('SADD', "$KEY:pin:canary", $long, $max, $out40);
    $t->redis_cli('PUBLISH', $KEY, 'pins');

    ok wait_until(3, sub { status()->{pins}{canary} == 2 }),
        'the pins of 256 bytes and less apply';

    my $re = qr/\[error\].*split "app": ignored a pinned tenant of 300 bytes/;
    ok wait_until(3, sub { log_lines($t, $re, $mark) }),
        '300-byte pin: logged';
    sleep 0.8;
    is scalar(log_lines($t, qr/pinned tenant/, $mark)), 1,
        '300-byte pin: logged once across polls';

    my $d = $t->route($port, '/', { 'X-Tenant-Id' => $long });
    is $d->{reason}, 'hash', 'the 300-byte tenant is not pinned';
    is $d->{side}, CanaryTest::is_canary('', $long, 40) ? 'canary'
                                                         : 'stable',
        'it routes by its hash';

    $d = $t->route($port, '/', { 'X-Tenant-Id' => $max });
    is $d->{reason}, 'pin', 'the 256-byte tenant is pinned';
    is $d->{side}, 'canary', 'to canary';

    $d = $t->route($port, '/', { 'X-Tenant-Id' => $out40 });
    is $d->{reason}, 'pin', "$out40 is pinned";
    is $d->{side}, 'canary', 'to canary, against its hash';

    $t->redis_cli('DEL', "$KEY:pin:canary");
    $t->redis_cli('PUBLISH', $KEY, 'pins');
    ok wait_until(3, sub { status()->{pins}{canary} == 0 }), 'pins removed';
}

# ---- many unknown fields at once ------------------------------------------

{
    my $mark = $t->log_mark;
    my @fields = map { ("future_field_$_", "v$_") } 1 .. 20;

    # a newer writer that knows fields this nginx does not
    $t->redis_cli('HSET', $KEY, @fields);
    $t->redis_cli('PUBLISH', $KEY, 'future');

    ok wait_until(3, sub { log_lines($t, qr/"future_field_20"/, $mark) }),
        '20 unknown fields: logged';
    sleep 0.8;

    my @all = log_lines($t, qr/rejected field "future_field_/, $mark);
    is scalar(@all), 20, '20 unknown fields: 20 lines across eight polls'
        or diag scalar(@all) . ' lines';

    routes_at(40, '20 unknown fields');
}

$t->stop;

done_testing;
