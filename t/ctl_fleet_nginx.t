#!/usr/bin/perl

# Story: five nginx (node= web-1 .. web-5) report split app to one Redis,
# and canary-ctl reads that fleet and writes only what it reports.
#
#   fleet --json lists the five, each applying the hash's generation
#   with its weight, guard armed; under traffic on web-1 its requests/s
#   show, with the canary's share near the weight.
#   web-3 stopped: gone from the list within 3 intervals.
#   web-6 started: joins.
#   set-weight on a typo split: exit 2 naming app, Redis untouched;
#   --force writes it.  A write to app: each node lags until its next
#   report, then applies it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(time);
use CanaryTest;
use RedisStory qw(:all);
use Traffic;

my $INTERVAL = 0.2;

my @t = map { CanaryTest->new(name => "web-$_") } 1 .. 6;
my $redis = '127.0.0.1:' . $t[0]->redis_start;

for my $i (0 .. 5) {
    $t[$i]->write_conf(redis_split_conf($t[$i], weight => 20,
                           redis => "$redis interval=200ms timeout=300ms "
                                    . 'node=web-' . ($i + 1)),
                       workers => 1);
}

$_->start for @t[0 .. 4];

sub fleet {
    my ($rc, $out) = canary_ctl($redis, 'fleet', 'app', '--json');
    my $doc = $rc == 0 ? eval { decode_json($out) } : undef;

    return $doc;
}

sub names {
    my $doc = fleet() or return '';
    return join ' ', sort map { $_->{node} } @{$doc->{nodes}};
}

ok wait_nodes($redis, 'app', 5), 'five nginx report split app';
is names(), 'web-1 web-2 web-3 web-4 web-5',
    'fleet --json lists web-1 .. web-5';

ctl_ok($redis, 'set-weight', 'app', 30);
ok wait_until(3, sub { my $d = fleet();
                       $d && 5 == grep { !$_->{lagging} && $_->{weight} == 30 }
                                   @{$d->{nodes}} }),
    'within a report each node applies it: none lagging, weight 30';

{
    my $d = fleet();
    is $d->{generation}, 1, 'the hash\'s generation 1';
    for my $n (@{$d->{nodes}}) {
        is $n->{generation}, 1, "$n->{node} applies generation 1";
        ok !$n->{guard_tripped}, "$n->{node} guard armed";
        cmp_ok $n->{age_s}, '<=', 3 * $INTERVAL + 0.2,
            "$n->{node} reported within 3 intervals";
    }
}

# traffic on web-1: its requests/s, the canary's share near 30%
my $load = Traffic->start(port => $t[0]->port('http'), clients => 2,
                          tenants => 1000, pause => 0.002);
sleep 2.5;
{
    my $d = fleet();
    my ($w1) = grep { $_->{node} eq 'web-1' } @{$d->{nodes}};
    cmp_ok $w1->{stable_rps} + $w1->{canary_rps}, '>', 10,
        'web-1 shows its requests/s' or diag explain $w1;
    ok defined $w1->{canary_share}
       && $w1->{canary_share} > 15 && $w1->{canary_share} < 45,
        "web-1: the canary's share $w1->{canary_share}% near the weight 30"
        or diag explain $w1;
    my ($w2) = grep { $_->{node} eq 'web-2' } @{$d->{nodes}};
    is $w2->{stable_rps} + $w2->{canary_rps}, 0, 'web-2: no requests';

    my ($rc, $out) = canary_ctl($redis, 'fleet', 'app');
    like $out, qr/^  web-1 .* armed .*% \(weight 30\)$/m,
        'the lines: web-1 with its share';
}
$load->stop;

# ---- one leaves, one joins --------------------------------------------------

my $t0 = time;
$t[2]->stop;
ok wait_until(5, sub { names() eq 'web-1 web-2 web-4 web-5' }),
    'web-3 stopped: gone from fleet';
cmp_ok time - $t0, '<=', 3 * $INTERVAL + 0.5, 'within 3 intervals';

$t[5]->start;
ok wait_until(5, sub { names() eq 'web-1 web-2 web-4 web-5 web-6' }),
    'web-6 joins';

# ---- a typo, refused; --force ------------------------------------------------

{
    # the nodes' records change every interval: the rest must not
    my $split_keys = sub {
        my @k = sort grep { !/:nodes?(:|$)/ } $t[0]->redis_cli('KEYS', '*');
        return join "\n", map { ("$_:", scalar $t[0]->redis_cli('DUMP', $_)) }
                          @k;
    };
    my $before = $split_keys->();
    my ($rc, $out, $err) = ctl_run($t[0], $redis, ['set-weight', 'apii', 30]);
    is $rc, 2, 'set-weight apii 30: exit 2';
    like $err, qr/no live nginx reports split "apii"; the fleet reports:/,
        'names the split';
    like $err, qr/reports: app$/m, 'app, the one the fleet reports';
    is $split_keys->(), $before, 'Redis untouched (but the nodes\' reports)';

    ($rc, $out, $err) = ctl_run($t[0], $redis,
                                ['set-weight', 'apii', 30, '--force']);
    is $rc, 0, 'set-weight apii 30 --force writes' or diag $err;
    is $t[0]->redis_cli('HGET', 'canary:apii', 'weight'), 30, 'weight 30';
}

$_->stop for @t[0, 1, 3, 4, 5];

done_testing;
