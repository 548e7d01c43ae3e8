#!/usr/bin/perl

# Story: canary-sidecar without --status reads the fleet from Redis, and
# the fleet's keys hold hostile records next to good ones.  A good node
# reports the counters of a real nginx (its /canary_status made into a
# node record every 200ms, as the module writes it); next to it, written
# with redis-cli: a record that is not JSON, one over 16384 bytes, one of
# another histogram layout, one of another version, counts that overflow
# (in JSON and in the latency pairs), a bucket out of range, a node's key
# of the wrong type, and members whose names are not node names.  The
# sidecar logs each one once (node and reason), ignores it, never
# crashes, and walks the rollout on the good node's traffic.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'fleet_bad', nodes => 1);
$s->start;

my $t = $s->nginx(0);
my $key = $s->key;

# a node record of what nginx's /canary_status says, as the contract has it
sub record_from_status {
    my ($node, $hist) = @_;

    my $r = $t->get($t->port('http'), '/canary_status?format=json&split=api');
    my $sp = decode_json($r->{content})->{splits}{api};
    my %rec = (v => 1, node => $node, instance => "1.$$", pid => $$,
               split => 'api', generation => $sp->{generation},
               weight => $sp->{weight},
               enabled => $sp->{enabled} ? JSON::PP::true : JSON::PP::false,
               guard_tripped => JSON::PP::false, created => $sp->{created},
               interval_ms => 200, hist => $hist || 'us64x16x20');

    for my $side (qw(stable canary)) {
        my $v = $sp->{variants}{$side};
        my $c = $v->{latency}{counts};
        $rec{$side} = {
            requests => $v->{requests},
            responses => [map { $v->{responses}{$_} } qw(1xx 2xx 3xx 4xx 5xx)],
            upstream_errors => $v->{upstream_errors},
            latency => join(',', map { "$_:$c->[$_]" } grep { $c->[$_] }
                                 0 .. $#$c),
            window_s => 1, window_requests => 0,
        };
    }

    return \%rec;
}

sub put {
    my ($node, $text, $ttl_ms) = @_;

    $ttl_ms ||= 60000;
    my ($sec, $us) = $s->redis('TIME');
    $s->redis('SET', "$key:node:$node", $text, 'PX', $ttl_ms)
        if defined $text;
    $s->redis('ZADD', "$key:nodes", int($sec * 1000 + $us / 1000) + $ttl_ms,
              $node);
}

my $json = JSON::PP->new->canonical;
my $good = record_from_status('good-1');

# the hostile ones, alive for the whole story
my %bad = (
    'bad-json'   => '{"v":1,"node":"bad-json",',
    'too-large'  => $json->encode({ %$good, node => 'too-large',
                                    pad => 'x' x 17000 }),
    'other-hist' => $json->encode({ %$good, node => 'other-hist',
                                    hist => 'us32x8x10' }),
    'version-2'  => $json->encode({ %$good, node => 'version-2', v => 2 }),
    'json-huge'  => do {
        my $r = $json->encode({ %$good, node => 'json-huge' });
        $r =~ s/"requests":\d+/"requests":99999999999999999999999/;
        $r },
    'count-huge' => $json->encode({ %$good, node => 'count-huge',
        stable => { %{$good->{stable}},
                    latency => '3:99999999999999999999999' } }),
    'bucket-out' => $json->encode({ %$good, node => 'bucket-out',
        canary => { %{$good->{canary}}, latency => '3:1,400:5' } }),
    'not-mine'   => $json->encode({ %$good, node => 'web-9' }),
);

put($_, $bad{$_}) for sort keys %bad;

# a node whose key is a hash, and names that are not node names
$s->redis('HSET', "$key:node:a-hash", 'v', 1);
put('a-hash', undef);
put($_, undef) for ('bad name', 'semi;colon', 'x' x 100, "nl\nname", '');

# the good node, every 200ms, from the real nginx
my $writer = fork;
die "fork: $!" unless defined $writer;

if ($writer == 0) {
    while (1) {
        my $ok = eval { put('good-1', $json->encode(record_from_status(
                                                        'good-1')), 1000);
                        1 };
        sleep 0.2;
    }
    _exit(0);
}

END { kill 'KILL', $writer if $writer; }

$s->traffic(clients => 2, rate => 80);
$s->sidecar(plan => fast_plan(), fleet => 1);

$s->wait_for(sub { grep { $_ eq 'canary_phase_complete' } $s->operations },
             25, 'the rollout goes on with the good node') or $s->show_log;

my ($started) = grep { $_->{operation} eq 'rollout_started' } $s->receipts;
my ($done) = grep { $_->{operation} eq 'canary_phase_complete' }
             $s->receipts;

cmp_ok $done->{nginx}{answered} // 0, '>=', 1,
    'judged on the good node' . ($done->{nginx}{answered} > 1
                                 ? 's (and the real nginx\'s record)' : '');
cmp_ok $done->{requests}{stable} // 0, '>', 0, 'its requests are judged';

sleep 1;    # more steps: still logged once
kill 'KILL', $writer;
waitpid $writer, 0;
$writer = undef;

my $log = $s->sidecar_log;

my %reason = (
    'bad-json'   => qr/not valid JSON/,
    'too-large'  => qr/record of \d+ bytes, over 16384/,
    'other-hist' => qr/"hist" is not "us64x16x20"/,
    'version-2'  => qr/"v" is not 1/,
    'json-huge'  => qr/not valid JSON.*too big/,
    'count-huge' => qr/a count over/,
    'bucket-out' => qr/bucket 400 or more: out of range/,
    'not-mine'   => qr/"node" is not "not-mine"/,
    'a-hash'     => qr/no record/,
    'bad\x20name'  => qr/not a valid node name/,
    'semi;colon' => qr/not a valid node name/,
    ('x' x 64)   => qr/not a valid node name/,
    'nl\x0aname' => qr/not a valid node name/,
    '""'         => qr/not a valid node name/,
);

for my $node (sort keys %reason) {
    my @l = grep { /: node \Q$node\E: / } split /\n/, $log;

    is scalar(@l), 1, "node $node: logged once";
    like $l[0] // '', $reason{$node}, "node $node: says why";
    like $l[0] // '', qr/; ignored$/, "node $node: ignored";
}

ok kill(0, $s->{sidecars}{'sidecar-a'}), 'the sidecar is still running';

$s->finish;

done_testing;
