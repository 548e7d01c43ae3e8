#!/usr/bin/perl

# Story: "canary-ctl shadow SPLIT PCT [--reason TEXT]" sets the percent of
# shadow traffic by hand, on the real stack (Redis, nginx with split "api"
# and "shadow 0").
#
# It is one write like set-weight: field shadow in the split's hash, the
# generation raised by one, a receipt shadow_set (the percent as a number,
# the reason; valid against docs/receipt.schema.json) and a PUBLISH, so
# nginx mirrors at once: at 100 every request routed to stable is also
# sent to canary, at 0 none, and the split's weight stays.  A bad percent
# or a wrong number of arguments exits 2 with a message that names it and
# writes nothing; so does a split no live nginx reports (--force writes
# it).  Unlike the weight it is allowed while the split is rolled back: a
# mirror exposes nobody.

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

my $s = SidecarTest->new(name => 'ctl-shadow', nodes => 1,
                         split_conf => 'shadow 0;');
$s->start;
my $t = $s->t;
my $port = $s->port;
my $redis = '127.0.0.1:' . $t->redis_port;

sub ctl { ctl_run($t, $redis, [@_]) }

sub gen { $s->hget('generation') || 0 }

sub shadow {
    my $r = $t->get($port, '/canary_status?split=api');
    return {} unless $r->{success};
    return decode_json($r->{content})->{splits}{api}{shadow} // {};
}

# 20 stable tenants' GETs, then the shadows they made (in the background:
# wait until each has a verdict or was counted, so the count is final)
sub mirrored {
    my $before = shadow()->{requests} // 0;

    $t->route_many($port, [ map {
        { path => '/', headers => [ 'X-Tenant-Id' => "s-$_" ] }
    } 1 .. 20 ], clients => 1);

    $s->wait_for(sub {
        my $sh = shadow();
        my $done = ($sh->{compared} // 0) + ($sh->{canary_errors} // 0)
                   + ($sh->{timeouts} // 0)
                   + ($sh->{skipped}{body_too_large} // 0);
        return $done >= ($sh->{requests} // 0);
    }, 10, 'the shadows end');

    return (shadow()->{requests} // 0) - $before;
}


# ---- 100: every stable request mirrored ------------------------------------

like $s->ctl('set-weight', 'api', '0'), qr/^weight api: \S+ -> 0% /m,
    'weight 0: every tenant on stable';
my $g = gen();

my $was = $s->hget('shadow');
$was = defined $was && length $was ? "$was%" : '(none)';
my ($rc, $out, $err) = ctl('shadow', 'api', '100', '--reason', 'diff "v2"');
is $rc, 0, 'shadow api 100: exit 0' or diag $err;
is $err, '', 'no warning: nginx has the shadow directive';
like $out, qr/^shadow api: \Q$was\E -> 100% \(generation \Q${\($g + 1)}\E\)$/m,
    'it says the percent before and after, the generation';
is gen(), $g + 1, 'the generation raised by one';
is $s->hget('shadow'), '100', 'shadow 100 in the hash';
is $s->hget('weight'), '0', 'the weight stays 0';

my @l = $t->redis_cli('XREVRANGE', $s->key . ':receipts', '+', '-',
                      'COUNT', 1);
my $text = $l[2] // '';
my $r = eval { decode_json($text) } || {};
is $r->{operation}, 'shadow_set', 'a receipt shadow_set';
like $text, qr/"shadow":100[,}]/, 'its percent a number, 100';
is $r->{reason}, 'diff "v2"', 'and the reason';
is $r->{generation}, $g + 1, 'and the generation';
ok exists $r->{previous}{shadow}, 'the percent it replaces: previous.shadow';
is_deeply [ $SCHEMA->validate($text) ], [], 'the receipt fits the schema';

# the lines for people say what was set, as they do for a weight
($rc, $out) = ctl('receipts', 'api', '1', '--op', 'shadow_set');
like $out, qr/ shadow_set +shadow \Q$was\E -> 100%, generation \Q${\($g + 1)}\E, /,
    'receipts --op shadow_set: the line says the percent set';
($rc, $out) = ctl('status', 'api');
like $out, qr/^  shadow +100$/m, 'status: the shadow field';
like $out, qr/^  last receipt .* shadow_set +shadow \Q$was\E -> 100%, /m,
    'status: the last receipt says the percent set';

ok $s->wait_for(sub { (shadow()->{percent} // -1) == 100 }, 10,
                'nginx applies it'), 'nginx mirrors 100%';
is mirrored(), 20, 'each of 20 stable requests mirrored';


# ---- 0: none ----------------------------------------------------------------

($rc, $out, $err) = ctl('shadow', 'api', '0');
is $rc, 0, 'shadow api 0: exit 0' or diag $err;
like $out, qr/^shadow api: 100% -> 0% /m, 'from 100% to 0%';
($rc, $out) = ctl('receipts', 'api', '1');
like $out, qr/ shadow_set +shadow 100% -> 0%, /, 'receipts: 100% -> 0%';
@l = $t->redis_cli('XREVRANGE', $s->key . ':receipts', '+', '-', 'COUNT', 1);
like $l[2] // '', qr/"previous":\{[^}]*"shadow":100[,}]/,
    'its previous.shadow a number, 100';
is_deeply [ $SCHEMA->validate($l[2] // '') ], [], 'it fits the schema';
ok $s->wait_for(sub { (shadow()->{percent} // -1) == 0 }, 10,
                'nginx applies 0'), 'nginx mirrors 0%';
is mirrored(), 0, 'no request mirrored';


# ---- refused: bad arguments, nothing written ------------------------------

$g = gen();

for my $case (
    [ [qw(shadow api 101)], qr/shadow percent "101" over 100/ ],
    [ [qw(shadow api 1.234)], qr/invalid shadow percent "1\.234"/ ],
    [ [qw(shadow api abc)], qr/invalid shadow percent "abc"/ ],
    [ [qw(shadow api -1)], qr/unknown option "-1"/ ],
    [ [qw(shadow api)], qr/wrong number of arguments/ ],
    [ [qw(shadow api 5 6)], qr/wrong number of arguments/ ],
    [ [qw(shadow api/x 5)], qr/invalid split name/ ],
) {
    my ($args, $msg) = @$case;
    my ($c, $o, $e) = ctl(@$args);
    my $name = join ' ', @$args;
    is $c, 2, "$name: exit 2";
    like $e, $msg, "$name: says why" or diag $e;
    unlike $e, qr/weight/, "$name: not about the weight";
    like $e, qr/usage: canary-ctl shadow SPLIT PCT/,
        "$name: with the usage line";
}

is gen(), $g, 'nothing written by the refused ones';
is $s->hget('shadow'), '0', 'shadow stays 0';

($rc, $out) = ctl('shadow', '--help');
is $rc, 0, 'shadow --help: exit 0';
like $out, qr/compared \(the\s+split's shadow field\)/,
    'it describes the command';


# ---- the fleet's refusal, --force ------------------------------------------

($rc, $out, $err) = ctl('shadow', 'nosuch', '5');
is $rc, 2, 'a split no nginx reports: exit 2';
like $err, qr/no live nginx reports split "nosuch"; the fleet reports: api/,
    'naming the splits the fleet reports';
is scalar $t->redis_cli('EXISTS', 'canary:nosuch'), 0, 'nothing written';

($rc, $out, $err) = ctl('shadow', 'nosuch', '5', '--force');
is $rc, 0, '--force writes it' or diag $err;
is scalar $t->redis_cli('HGET', 'canary:nosuch', 'shadow'), '5',
    'shadow 5 in the new split';


# ---- rolled back: allowed --------------------------------------------------

like $s->ctl('rollback', 'api', '--reason', 'bad'), qr/^rollback api: /m,
    'rolled back';
$g = gen();

($rc, $out, $err) = ctl('shadow', 'api', '50');
is $rc, 0, 'shadow while rolled back: exit 0' or diag $err;
is gen(), $g + 1, 'written';
is $s->hget('shadow'), '50', 'shadow 50';
is $s->hget('state'), 'rolled_back', 'the split stays rolled back';

$s->finish;


# ---- a split without nginx.conf's shadow directive: written, a warning -----

my $n = SidecarTest->new(name => 'ctl-shadow-none', nodes => 1);
$n->start;
my $nt = $n->t;
my $nredis = '127.0.0.1:' . $nt->redis_port;

($rc, $out, $err) = ctl_run($nt, $nredis, ['shadow', 'api', '10']);
is $rc, 0, 'no shadow directive: still written, exit 0' or diag $err;
is $n->hget('shadow'), '10', 'shadow 10 in the hash';
like $err, qr/warning: none of the 1 live nginx of split api has a/,
    'a warning: no live nginx has the directive';
like $err, qr/has a shadow directive .*: nothing is mirrored/,
    'so nothing is mirrored';

($rc, $out, $err) = ctl_run($nt, $nredis, ['shadow', 'api', '0']);
is $err, '', 'setting 0: no warning';

$n->finish;

done_testing;
