#!/usr/bin/perl

# Story: canary-ctl reads the fleet that reports to Redis, and refuses to
# write a split no live nginx reports.
#
#   fleet SPLIT [--json]   one line (or one JSON object) per live node:
#                          age of its last report, the generation it
#                          applies and whether it lags the hash's, its
#                          weight and guard, requests/s on each side and
#                          the canary's share; an expired node is not
#                          listed; an empty fleet is "nodes": [].
#   bad records            not JSON, over 16384 bytes, another version or
#                          histogram layout, fields of the wrong type or
#                          null, another node's or split's, a key of the
#                          wrong type, a member that is no node name:
#                          each ignored and named on stderr, the rest
#                          listed, exit 0, stdout valid JSON.
#   unreported split       every change (set-weight ... unpin) exits 2,
#                          names the splits live nodes report (their
#                          prefix's, whatever glob characters it has) and
#                          leaves Redis untouched; --force writes; status
#                          warns and exits 0.
#
# The records are written by hand (as nginx writes them, one EVAL): no
# nginx runs here; t/ctl_fleet_nginx.t is the same with real nginx.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(ctl_run redis_snapshot node_record report_node
                  live_nodes);

my $t = CanaryTest->new(name => 'ctl-fleet');
my $redis = '127.0.0.1:' . $t->redis_start;

sub r { $t->redis_cli(@_) }

# (exit code, stdout, stderr), with CANARY_REDIS on our Redis
sub ctl { ctl_run($t, $redis, @_) }

sub fleet_json {
    my ($split, @more) = @_;

    my ($rc, $out, $err) = ctl(['fleet', $split, '--json', @more]);
    my $doc = eval { decode_json($out) };

    return ($rc, $doc, $err, $out);
}

# a record that lives 30 s (3 intervals of 10 s): no race with a slow
# machine
sub rec { node_record(interval_ms => 10000, @_) }

sub side {
    my ($window_s, $requests) = @_;

    return { requests => 5 * $requests, responses => [0, $requests, 0, 0, 0],
             upstream_errors => 0, latency => "3:$requests",
             window_s => $window_s, window_requests => $requests };
}

# ---- an empty fleet ----------------------------------------------------------

{
    my ($rc, $doc, $err, $out) = fleet_json('app');
    is $rc, 0, 'fleet app --json with no node exits 0' or diag $err;
    is $out, qq{{"split":"app","generation":null,"nodes":[]}\n},
        'and prints the split, no generation and "nodes": [] (not {})';
    like $err, qr/no live nginx reports split "app", nor any other/,
        'stderr: no nginx reports it';

    ($rc, $out, $err) = ctl(['fleet', 'app']);
    is $rc, 0, 'fleet app exits 0';
    like $out, qr/^split app: generation \(no hash\), 0 live node\(s\)$/m,
        'and says there is none';
}

# ---- live nodes ------------------------------------------------------------

r('HSET', 'canary:app', 'generation', 7, 'weight', 30);

# web-1 applies generation 7, 70 + 30 requests/s over 10 s
report_node($t, 'app', 'web-1', record => rec(
    node => 'web-1', generation => 7, weight => 30,
    stable => side(10, 700), canary => side(10, 300)));

# web-2: generation 6 (lagging), its guard tripped, its last report
# 1.5 s ago, 2 s windows, no requests
report_node($t, 'app', 'web-2', age_ms => 1500, record => rec(
    node => 'web-2', generation => 6, weight => 12.5,
    guard_tripped => JSON::PP::true,
    stable => side(2, 0), canary => side(2, 0)));

# web-3 went away: its score is in the past
report_node($t, 'app', 'web-3', age_ms => 5000);

# another split, and the same split name under another prefix
report_node($t, 'web', 'w-1', record => rec(node => 'w-1',
                                                     split => 'web'));
report_node($t, 'hidden', 'h-1', prefix => 'other:',
            record => rec(node => 'h-1', split => 'hidden'));

is_deeply [ live_nodes($t, 'app') ], ['web-1', 'web-2'],
    'by hand: web-1 and web-2 live, web-3 expired';

{
    my ($rc, $doc, $err, $out) = fleet_json('app');
    is $rc, 0, 'fleet app --json exits 0' or diag $err;
    ok $doc, 'prints valid JSON' or diag $out;
    is $err, '', 'nothing on stderr';
    is $doc->{split}, 'app', 'split';
    is $doc->{generation}, 7, 'the hash\'s generation';

    my %n = map { $_->{node} => $_ } @{$doc->{nodes} || []};
    is_deeply [ sort keys %n ], ['web-1', 'web-2'],
        'the two live nodes, not the expired one';

    is_deeply [ sort keys %{$n{'web-1'} || {}} ],
        [ sort qw(node age_s generation lagging weight guard_tripped
                  stable_rps canary_rps canary_share) ],
        'each with exactly the documented keys';

    my $w1 = $n{'web-1'};
    cmp_ok $w1->{age_s}, '<', 1, 'web-1 reported just now';
    is $w1->{generation}, 7, 'web-1 applies generation 7';
    ok JSON::PP::is_bool($w1->{lagging}) && !$w1->{lagging},
        'web-1 is not lagging (a JSON false)';
    is $w1->{weight}, 30, 'web-1 weight 30';
    ok JSON::PP::is_bool($w1->{guard_tripped}) && !$w1->{guard_tripped},
        'web-1 guard armed (false)';
    is $w1->{stable_rps}, 70, 'web-1: 700 stable requests in 10 s: 70/s';
    is $w1->{canary_rps}, 30, 'web-1: 30 canary requests/s';
    is $w1->{canary_share}, 30, 'web-1: the canary\'s share 30 (percent)';

    my $w2 = $n{'web-2'};
    cmp_ok $w2->{age_s}, '>=', 1.4, 'web-2 reported 1.5 s ago';
    cmp_ok $w2->{age_s}, '<', 2.5, 'not longer';
    ok $w2->{lagging}, 'web-2 applies generation 6: lagging';
    is $w2->{weight}, 12.5, 'web-2 weight 12.5';
    ok $w2->{guard_tripped}, 'web-2 guard tripped';
    is $w2->{stable_rps}, 0, 'web-2: no requests';
    ok !defined $w2->{canary_share}, 'web-2: canary_share null';

    ($rc, $out, $err) = ctl(['fleet', 'app']);
    is $rc, 0, 'fleet app exits 0';
    like $out, qr/^split app: generation 7, 2 live node\(s\), 1 lagging$/m,
        'lines: the header counts the nodes and the lagging';
    like $out, qr/^  web-1 +[\d.]+ +7 +30 +armed +70 +30 +30% \(weight 30\)$/m,
        'lines: web-1';
    like $out, qr/^  web-2 +1\.\d +6 lagging +12\.5 +tripped +0 +0 +- /m,
        'lines: web-2 lagging, tripped, no share';
    unlike $out, qr/web-3/, 'lines: not web-3';
}

# ---- bad records: ignored, named, never a crash ----------------------------

my %hostile = (
    'bad-json'    => '{"v":1,"node":',
    'bad-array'   => '[1,2,3]',
    'bad-string'  => '"a string"',
    'bad-null'    => 'null',
    'bad-deep'    => ('[' x 5000) . (']' x 5000),
    'bad-big'     => JSON::PP->new->canonical->encode(rec(
                         node => 'bad-big', pad => 'x' x 16400)),
    'bad-v'       => rec(node => 'bad-v', v => 2),
    'bad-v-str'   => rec(node => 'bad-v-str', v => '1'),
    'bad-hist'    => rec(node => 'bad-hist', hist => 'ms32x8'),
    'bad-node'    => rec(node => 'web-1'),
    'bad-split'   => rec(node => 'bad-split', split => 'web'),
    'bad-weight'  => rec(node => 'bad-weight', weight => '30'),
    'bad-wnum'    => rec(node => 'bad-wnum', weight => 101),
    'bad-gen'     => rec(node => 'bad-gen', generation => -1),
    'bad-gen-f'   => rec(node => 'bad-gen-f', generation => 1.5),
    'bad-gen-big' => JSON::PP->new->canonical->encode(rec(
                         node => 'bad-gen-big', generation => 7))
                     =~ s/"generation":7/"generation":1e999/r,
    'bad-guard'   => rec(node => 'bad-guard',
                                 guard_tripped => 'false'),
    'bad-null-w'  => rec(node => 'bad-null-w', weight => undef),
    'bad-interval'=> rec(node => 'bad-interval', interval_ms => 0),
    'bad-side'    => rec(node => 'bad-side', canary => 'x'),
    'bad-window'  => rec(node => 'bad-window',
                                 stable => { window_s => 'ten' }),
);

for my $name (sort keys %hostile) {
    report_node($t, 'app', $name, record => $hostile{$name},
                interval_ms => 10000);
}

# a record that is exactly the longest one read: listed
{
    my $rec = rec(node => 'max-size', generation => 7, pad => '');
    my $len = length JSON::PP->new->canonical->encode($rec);
    $rec->{pad} = 'x' x (16384 - $len);
    report_node($t, 'app', 'max-size', record => $rec);
    is length(r('GET', 'canary:app:node:max-size')), 16384,
        'a record of exactly 16384 bytes';
}

# a record key of the wrong type, a member that is no node name
r('HSET', 'canary:app:node:bad-type', 'v', 1);
r('ZADD', 'canary:app:nodes', 9e15, 'bad-type');
r('ZADD', 'canary:app:nodes', 9e15, "bad\x01name\e[31m");
r('ZADD', 'canary:app:nodes', 9e15, 'x' x 64);

my $bad = keys(%hostile) + 3;

{
    my ($rc, $doc, $err, $out) = fleet_json('app');
    is $rc, 0, 'fleet app --json with hostile records exits 0' or diag $err;
    ok $doc, 'stdout is valid JSON' or diag substr $out, 0, 500;
    is_deeply [ sort map { $_->{node} } @{$doc->{nodes} || []} ],
        ['max-size', 'web-1', 'web-2'],
        'lists the good records only (and the one of 16384 bytes)';

    for my $name (sort keys %hostile, 'bad-type') {
        like $err, qr/^canary-ctl: app: ignored the record of node \Q$name\E:/m,
            "stderr names $name";
    }
    like $err, qr/node bad\?name\?\?31m: not a node name/,
        'a member that is no node name, its bytes made printable';
    like $err, qr/node x{63}: not a node name/, 'a name of 64 bytes';
    like $err, qr/bad-big: too large \(\d{5} bytes\)/, 'too large, it says';
    like $err, qr/bad-json: not valid JSON/, 'not valid JSON, it says';
    like $err, qr/bad-hist: another histogram layout/, 'another layout';
    like $err, qr/bad-v: another version/, 'another version';
    unlike $err, qr/\e/, 'no escape byte reaches the terminal';
    like $err, qr/^canary-ctl: app: $bad record\(s\) ignored$/m,
        "and counts them: $bad";

    ($rc, $out, $err) = ctl(['fleet', 'app']);
    is $rc, 0, 'fleet app (lines) with hostile records exits 0';
    is scalar(() = $out =~ /^  (?:web-1|web-2|max-size) /mg), 3,
        'three lines, one per good record';
    like $err, qr/^canary-ctl: app: $bad record\(s\) ignored$/m,
        'stderr says how many were ignored';

    # status counts what the nodes set has live, records good or bad
    ($rc, $out, $err) = ctl(['status', 'app']);
    is $rc, 0, 'status app exits 0';
    like $out, qr/^  nodes +\d+ live \(canary-ctl fleet app\)$/m,
        'status: the live nodes';
}

# a nodes set that is no sorted set
r('SET', 'canary:str:nodes', 'x');
{
    my ($rc, $out, $err) = ctl(['fleet', 'str']);
    is $rc, 1, 'fleet of a nodes key of the wrong type exits 1';
    like $err, qr/WRONGTYPE/, 'with what Redis said';
    like $err, qr/cannot read the fleet of str/, 'and what failed';
}

# ---- a split no live nginx reports -----------------------------------------

my @changes = (
    ['set-weight', 'apii', 30],
    ['enable', 'apii'],
    ['disable', 'apii'],
    ['pause', 'apii'],
    ['resume', 'apii'],
    ['rollback', 'apii', '--reason', 'typo'],
    ['reset', 'apii', '--reason', 'typo'],
    ['pin', 'apii', 'canary', 'vip'],
    ['unpin', 'apii', 'vip'],
    # its hash exists, its nodes all expired
    ['set-weight', 'gone', 30],
);

report_node($t, 'gone', 'g-1', age_ms => 4000);
r('HSET', 'canary:gone', 'weight', 5, 'generation', 3);

for my $args (@changes) {
    my $before = redis_snapshot($t);
    my ($rc, $out, $err) = ctl($args);

    is $rc, 2, "canary-ctl @$args: exit 2";
    my $says = qq{no live nginx reports split "$args->[1]"; the fleet}
               . ' reports: app, web';
    like $err, qr/\Q$says\E$/m,
        'names the splits the fleet reports (not another prefix\'s)';
    like $err, qr/nothing written; --force writes anyway/, 'says --force';
    is $out, '', 'nothing on stdout';
    is redis_snapshot($t), $before, 'Redis untouched';
}

{
    my ($rc, $out, $err) = ctl(['status', 'apii']);
    is $rc, 0, 'status apii exits 0';
    like $out, qr/^  nodes +none live: no nginx reports apii/m,
        'and warns that no nginx reports it';

    ($rc, $out, $err) = ctl(['set-weight', 'apii', 30, '--force']);
    is $rc, 0, 'set-weight apii 30 --force writes' or diag $err;
    is r('HGET', 'canary:apii', 'weight'), 30, 'weight 30 in Redis';
    is r('HGET', 'canary:apii', 'generation'), 1, 'generation 1';

    ($rc, $out, $err) = ctl(['--force', 'pin', 'apii', 'canary', 'vip']);
    is $rc, 2, '--force before the command is no global option';

    ($rc, $out, $err) = ctl(['pin', 'apii', '--force', 'canary', 'vip']);
    is $rc, 0, 'pin apii --force canary vip writes' or diag $err;
    is r('SISMEMBER', 'canary:apii:pin:canary', 'vip'), 1, 'vip pinned';

    ($rc, $out, $err) = ctl(['pin', 'apii', 'canary', '--', '--force']);
    is $rc, 2, 'after "--", --force is a tenant: refused';

    ($rc, $out, $err) = ctl(['set-weight', 'app', 40]);
    is $rc, 0, 'set-weight app 40 on a reported split writes' or diag $err;
    is r('HGET', 'canary:app', 'generation'), 8, 'generation 8';

    # now every node of app applies 7: lagging
    my $doc;
    ($rc, $doc) = fleet_json('app');
    is scalar(grep { $_->{lagging} } @{$doc->{nodes}}), 3,
        'after the write, the three nodes that report 7 lag 8';
}

# a prefix with the glob's characters: its splits are found, and only its
# (unescaped, "a*?[x]:*:nodes" would match aZZ?x:two:nodes)
{
    my $p = 'a*?[x]:';
    report_node($t, 'one', 'n-1', prefix => $p,
                record => rec(node => 'n-1', split => 'one'));
    report_node($t, 'two', 'n-2', prefix => 'aZZ?x:',
                record => rec(node => 'n-2', split => 'two'));

    my ($rc, $out, $err) = ctl(['set-weight', 'onee', 5],
                               CANARY_PREFIX => $p);
    is $rc, 2, 'a prefix with glob characters: the typo refused';
    like $err, qr/the fleet reports: one$/m,
        'names its split, not one a glob would match';

    ($rc, $out, $err) = ctl(['set-weight', 'one', 5], CANARY_PREFIX => $p);
    is $rc, 0, 'and writes the reported one' or diag $err;
}

# ---- options --------------------------------------------------------------

for my $args (['status', 'app', '--force'], ['receipts', 'app', '--force'],
              ['fleet', 'app', '--force'], ['status', 'app', '--json'],
              ['set-weight', 'app', 5, '--json'], ['fleet', 'app', 'x'],
              ['fleet'], ['fleet', 'a b'], ['fleet', 'app', '--reason', 'x'])
{
    my $before = redis_snapshot($t);
    my ($rc, $out, $err) = ctl($args);
    is $rc, 2, "canary-ctl @$args: a usage error";
    like $err, qr/^usage: canary-ctl /m, 'with the usage line';
    is redis_snapshot($t), $before, 'Redis untouched';
}

{
    my ($rc, $out) = ctl(['fleet', '--help']);
    is $rc, 0, 'fleet --help';
    like $out, qr/^usage: canary-ctl fleet SPLIT \[--json\]/m, 'its usage';

    ($rc, $out) = ctl(['--help']);
    like $out, qr/^  fleet SPLIT \[--json\]/m, '--help lists fleet';
    like $out, qr/--force writes/, 'and says what --force does';
}

$t->stop;

done_testing;
