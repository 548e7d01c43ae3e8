#!/usr/bin/perl

# Story: "canary-ctl cohort SPLIT COHORT PCT [--reason TEXT]" sets one
# cohort's weight by hand, on the real stack (Redis, nginx with split
# "api", "cohort $http_x_cohort" and cohort_weight internal 0).
#
# It is one write like set-weight: weight.COHORT in the split's hash, the
# generation raised by one, a receipt cohort_weight_set (the cohort, its
# weight as a number, the reason; valid against docs/receipt.schema.json)
# and a PUBLISH, so nginx routes the cohort by it at once: at 100 every
# internal tenant on canary ($canary_reason cohort), at 12.5 those whose
# hash is under 12.5, and the split's weight stays.  A bad cohort name,
# a bad percent or a wrong number of arguments exits 2 with a message
# that names it and writes nothing; so does a split no live nginx reports
# (--force writes it), and a rolled-back split until canary-ctl reset.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use ReceiptSchema;
use RedisStory qw(ctl_run);
use SidecarTest;

my $SCHEMA = ReceiptSchema->load;

my $s = SidecarTest->new(name => 'ctl-cohort', nodes => 1,
                         split_conf => 'cohort $http_x_cohort; '
                                       . 'cohort_weight internal 0;');
$s->start;
my $t = $s->t;
my $port = $s->port;
my $redis = '127.0.0.1:' . $t->redis_port;

sub ctl { ctl_run($t, $redis, [@_]) }

sub gen { $s->hget('generation') || 0 }

sub status {
    my $r = $t->get($port, '/canary_status?split=api');
    return {} unless $r->{success};
    return decode_json($r->{content})->{splits}{api};
}

sub internal {
    my (@tenants) = @_;

    return $t->route_many($port, [ map {
        { path => '/', headers => [ 'X-Tenant-Id' => $_,
                                    'X-Cohort' => 'internal' ] }
    } @tenants ], clients => 1);
}

my @TENANTS = map { "i-$_" } 1 .. 100;


# ---- 100: every internal tenant on canary --------------------------------

like $s->ctl('set-weight', 'api', '5'), qr/^weight api: \S+ -> 5% /m,
    'weight 5';
my $g = gen();

# the cohort's weight before, as the confirmation says it
my $was = $s->hget('weight.internal');
$was = defined $was && length $was ? "$was%" : '(none)';
my ($rc, $out, $err) = ctl('cohort', 'api', 'internal', '100',
                           '--reason', 'dogfood "now"');
is $rc, 0, 'cohort api internal 100: exit 0' or diag $err;
like $out, qr/^cohort internal api: \Q$was\E -> 100% \(generation \Q${\($g + 1)}\E\)$/m,
    'it says the cohort, its weight before and after, the generation';
is gen(), $g + 1, 'the generation raised by one';
is $s->hget('weight.internal'), '100', 'weight.internal 100 in the hash';
is $s->hget('weight'), '5', 'the split\'s weight stays 5';

my @l = $t->redis_cli('XREVRANGE', $s->key . ':receipts', '+', '-',
                      'COUNT', 1);
my $text = $l[2] // '';
my $r = eval { decode_json($text) } || {};
is $r->{operation}, 'cohort_weight_set', 'a receipt cohort_weight_set';
is $r->{cohort}, 'internal', 'naming the cohort';
like $text, qr/"cohort_weight":100[,}]/, 'its weight a number, 100';
is $r->{reason}, 'dogfood "now"', 'and the reason';
is $r->{generation}, $g + 1, 'and the generation';
is_deeply [ $SCHEMA->validate($text) ], [], 'the receipt fits the schema';

ok $s->wait_for(sub { (status()->{cohorts}{internal} // -1) == 100 }, 10,
                'nginx applies it'), 'nginx has internal at 100';

my $res = internal(@TENANTS);
my @bad = grep { $_->{variant} ne 'canary' || $_->{reason} ne 'cohort'
                 || $_->{weight} ne '100' } @$res;
ok !@bad, 'every internal tenant on canary, by its cohort at 100'
    or diag explain $bad[0];


# ---- 12.5: by the hash ----------------------------------------------------

($rc, $out, $err) = ctl('cohort', 'api', 'internal', '12.5');
is $rc, 0, 'cohort api internal 12.5: exit 0' or diag $err;
is $s->hget('weight.internal'), '12.5', 'weight.internal 12.5';

ok $s->wait_for(sub { (status()->{cohorts}{internal} // -1) == 12.5 }, 10,
                'nginx applies 12.5'), 'nginx has internal at 12.5';

$res = internal(@TENANTS);
my @wrong;
my $on = 0;
for my $i (0 .. $#TENANTS) {
    my $want = CanaryTest::is_canary('', $TENANTS[$i], 12.5) ? 'canary'
                                                             : 'stable';
    $on++ if $want eq 'canary';
    push @wrong, "$TENANTS[$i]: $res->[$i]{variant}, not $want"
        if $res->[$i]{variant} ne $want || $res->[$i]{reason} ne 'cohort';
}
ok !@wrong, "internal tenants by their hash at 12.5 ($on of 100 canary)"
    or diag join "\n", @wrong;
ok $on > 0 && $on < 100, 'some on each side';


# ---- refused: bad arguments, nothing written ------------------------------

$g = gen();

for my $case (
    [ [qw(cohort api), 'two words', '5'], qr/invalid cohort name "two words"/ ],
    [ [qw(cohort api), '', '5'], qr/invalid cohort name ""/ ],
    [ [qw(cohort api), 'x' x 64, '5'], qr/invalid cohort name "x{64}": 1 to 63/ ],
    [ [qw(cohort api internal 101)], qr/weight "101" over 100/ ],
    [ [qw(cohort api internal 1.234)], qr/invalid weight "1\.234"/ ],
    [ [qw(cohort api internal -1)], qr/unknown option "-1"/ ],
    [ [qw(cohort api internal)], qr/wrong number of arguments/ ],
    [ [qw(cohort api internal 5 6)], qr/wrong number of arguments/ ],
    [ [qw(cohort api/x internal 5)], qr/invalid split name/ ],
) {
    my ($args, $msg) = @$case;
    my ($c, $o, $e) = ctl(@$args);
    my $name = join ' ', map { length $_ > 12 ? substr($_, 0, 9) . '...'
                                              : length $_ ? $_ : "''" }
                         @$args;
    is $c, 2, "$name: exit 2";
    like $e, $msg, "$name: says why" or diag $e;
    like $e, qr/usage: canary-ctl cohort SPLIT COHORT PCT/,
        "$name: with the usage line";
}

is gen(), $g, 'nothing written by the refused ones';
is $s->hget('weight.internal'), '12.5', 'weight.internal stays 12.5';

($rc, $out) = ctl('cohort', '--help');
is $rc, 0, 'cohort --help: exit 0';
like $out, qr/weight\.COHORT/, 'it describes the command';


# ---- the fleet's refusal, --force ------------------------------------------

($rc, $out, $err) = ctl('cohort', 'nosuch', 'internal', '5');
is $rc, 2, 'a split no nginx reports: exit 2';
like $err, qr/no live nginx reports split "nosuch"; the fleet reports: api/,
    'naming the splits the fleet reports';
is scalar $t->redis_cli('EXISTS', 'canary:nosuch'), 0, 'nothing written';

($rc, $out, $err) = ctl('cohort', 'nosuch', 'internal', '5', '--force');
is $rc, 0, '--force writes it' or diag $err;
is scalar $t->redis_cli('HGET', 'canary:nosuch', 'weight.internal'), '5',
    'weight.internal 5 in the new split';


# ---- rolled back: refused until reset --------------------------------------

like $s->ctl('rollback', 'api', '--reason', 'bad'), qr/^rollback api: /m,
    'rolled back';
$g = gen();

($rc, $out, $err) = ctl('cohort', 'api', 'internal', '50');
is $rc, 2, 'cohort while rolled back: exit 2';
like $err, qr/api: rolled back: canary-ctl reset first/, 'says why';
is gen(), $g, 'nothing written';
is $s->hget('weight.internal'), '12.5', 'weight.internal stays';

like $s->ctl('reset', 'api', '--reason', 'ok'), qr/^reset api: /m, 'reset';
($rc, $out, $err) = ctl('cohort', 'api', 'internal', '50');
is $rc, 0, 'after reset: exit 0' or diag $err;
is $s->hget('weight.internal'), '50', 'weight.internal 50';

$s->finish;

done_testing;
