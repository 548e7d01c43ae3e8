#!/usr/bin/perl

# Story: an operator's arguments to canary-ctl that used to fall into
# traps.
#
#   -h / --help      help only right after the command: "rollback app
#                    --reason -h" rolls back with the reason "-h", and a
#                    tenant named "-h" can be pinned (after "--")
#   options          recognised wherever they stand before a "--": "pin
#                    app stable --reason x t2" pins t2 alone, with the
#                    reason x; a global option after the command counts
#   "-" arguments    an argument that begins with "-" before "--" is an
#                    unknown option: exit 2, nothing written
#   global options   every malformed one (a port that is no number, an
#                    empty host or prefix, a db out of range, an empty
#                    password file) is a usage error: exit 2, the main
#                    usage line, and Redis is never contacted
#   status           a split whose hash is gone: says that nginx keeps
#                    what it has in force, not that it uses nginx.conf

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use CanaryTest;
use RedisStory qw(report_node node_record ctl_run redis_connections
                  redis_snapshot);

my $CTL = "$FindBin::Bin/../scripts/canary-ctl";
my $KEY = 'canary:app';

my $t = CanaryTest->new(name => 'ctl-args');
my $redis = '127.0.0.1:' . $t->redis_start;

# a node reports split app, as nginx would (written by hand, to live for
# the whole story): canary-ctl writes the splits the fleet reports
# (t/ctl_fleet.t); the other splits here are written with --force
report_node($t, 'app', 'web-1', record => node_record(interval_ms => 600000));

sub r { $t->redis_cli(@_) }

# (exit code, stdout, stderr), with CANARY_REDIS on our Redis
sub ctl { ctl_run($t, $redis, @_) }

sub last_receipt {
    my @l = r('XREVRANGE', "$KEY:receipts", '+', '-', 'COUNT', 1);
    return @l >= 3 ? decode_json($l[2]) : {};
}

sub members { [ sort(r('SMEMBERS', $_[0])) ] }

sub snapshot { redis_snapshot($t) }

sub connections { redis_connections($t) }

# ---- -h is an argument unless right after the command ------------------------

{
    my ($rc, $out, $err) = ctl(['rollback', 'app', '--reason', '-h']);
    is $rc, 0, 'rollback app --reason -h exits 0' or diag $err;
    unlike $out, qr/^usage:/m, 'and prints no help';
    is r('HGET', $KEY, 'state'), 'rolled_back', 'it rolled back';
    is last_receipt()->{reason}, '-h', 'with the reason "-h"';

    ($rc, $out, $err) = ctl(['reset', 'app', '--reason=-h']);
    is $rc, 0, 'reset app --reason=-h' or diag $err;

    ($rc, $out, $err) = ctl(['pin', 'app', 'canary', '--', '-h', '--help']);
    is $rc, 0, 'pin app canary -- -h --help' or diag $err;
    is_deeply members("$KEY:pin:canary"), ['--help', '-h'],
        'tenants "-h" and "--help" pinned';
    is_deeply last_receipt()->{tenants}, ['-h', '--help'],
        'and listed in the receipt';

    ($rc, $out, $err) = ctl(['unpin', 'app', '--', '-h', '--help']);
    is $rc, 0, 'unpin app -- -h --help' or diag $err;
    is_deeply members("$KEY:pin:canary"), [], 'unpinned';

    for my $h ('-h', '--help') {
        ($rc, $out) = ctl(['pin', $h]);
        is $rc, 0, "pin $h: help right after the command";
        like $out, qr/^usage: canary-ctl pin SPLIT/m, 'prints it';
    }
}

# ---- options wherever they stand before "--" ----------------------------------

{
    my ($rc, $out, $err) = ctl(['pin', 'app', 'stable', '--reason', 'x',
                                't2']);
    is $rc, 0, 'pin app stable --reason x t2' or diag $err;
    is_deeply members("$KEY:pin:stable"), ['t2'], 'pins t2 alone';
    my $r = last_receipt();
    is $r->{reason}, 'x', 'with the reason x';
    is_deeply $r->{tenants}, ['t2'], 'the receipt lists t2 alone';

    ($rc, $out, $err) = ctl(['unpin', 'app', 't2', '--reason', 'done']);
    is $rc, 0, 'unpin app t2 --reason done' or diag $err;
    is_deeply members("$KEY:pin:stable"), [], 'unpinned t2';
    is last_receipt()->{reason}, 'done', 'with the reason';

    # a global option after the command
    ($rc, $out, $err) = ctl(['set-weight', 'app', '7', '--prefix', 'other:',
                             '--force']);
    is $rc, 0, 'set-weight app 7 --prefix other: --force' or diag $err;
    is r('HGET', 'other:app', 'weight'), '7', 'wrote other:app';
}

# ---- refused: exit 2, Redis untouched -----------------------------------------

my @bad = (
    ['pin', 'app', 'canary', '-h'],
    ['pin', 'app', 'canary', 't1', '--help'],
    ['pin', 'app', 'canary', '-x'],
    ['unpin', 'app', '-h'],
    ['set-weight', 'app', '5', '--help'],
    ['rollback', 'app', '--reason', 'x', '-h'],
    ['status', 'app', '-h'],
    ['status', 'app', '--reason', 'x'],
    ['receipts', 'app', '--reason', 'x'],
    ['set-weight', 'app', '5', '--reason', 'x', '--reason', 'y'],
    ['pin', 'app', '--reason', 'x', 'canary', 't1', '--reason', 'y'],
);

# malformed global options and their variables: the main usage line
my @bad_global = (
    [['--redis', 'localhost:abc', 'status', 'app']],
    [['--redis', 'localhost:', 'status', 'app']],
    [['--redis', ':6379', 'status', 'app']],
    [['--redis', 'localhost:0', 'status', 'app']],
    [['--redis', 'localhost:65536', 'status', 'app']],
    [['--redis', 'localhost:99999999999999999999', 'status', 'app']],
    [['--redis', 'a b:6379', 'status', 'app']],
    [['--redis', 'unix:', 'status', 'app']],
    [['--redis=localhost:6379x', 'set-weight', 'app', '5']],
    [['status', 'app', '--redis', 'localhost:abc']],
    [['--prefix', '', 'status', 'app']],
    [['--prefix=', 'set-weight', 'app', '5']],
    [['--prefix', 'a b:', 'status', 'app']],
    [['--prefix', 'x' x 65, 'status', 'app']],
    [['--db', '65536', 'status', 'app']],
    [['--db', '99999999999999999999', 'status', 'app']],
    [['--password-file', '', 'status', 'app']],
    [['--password-file=', 'status', 'app']],
    [['status', 'app'], CANARY_REDIS => 'localhost:abc'],
    [['status', 'app'], CANARY_PREFIX => 'a b:'],
    [['status', 'app'], CANARY_REDIS_DB => '70000'],
);

{
    r('HSET', $KEY, 'weight', 3);
    my $snap = snapshot();
    my $conns = connections();

    for my $args (@bad) {
        my ($rc, $out, $err) = ctl($args);

        subtest "canary-ctl @$args" => sub {
            is $rc, 2, 'exits 2';
            like $err, qr/^canary-ctl: \S/m, 'says why';
            like $err, qr/^usage: canary-ctl \Q$args->[0]\E /m,
                'with the usage of the command';
            is $out, '', 'nothing on stdout';
        };
    }

    for my $case (@bad_global) {
        my ($args, %env) = @$case;
        my $what = join ' ', (map { "$_='$env{$_}'" } sort keys %env),
                             map { length $_ > 24 ? substr($_, 0, 21) . '...'
                                                  : "'$_'" } @$args;
        my ($rc, $out, $err) = ctl($args, %env);

        subtest "canary-ctl $what" => sub {
            is $rc, 2, 'exits 2: a usage error';
            like $err, qr/^canary-ctl: invalid|needs/m, 'says why';
            like $err, qr/^usage: canary-ctl \[--redis /m,
                'with the main usage line';
            is $out, '', 'nothing on stdout';
        };
    }

    is connections(), $conns + 1,
        'none of the ' . (@bad + @bad_global) . ' bad invocations '
        . 'connected to Redis';
    is snapshot(), $snap, 'every key and its DUMP unchanged';
}

# ---- status of a split whose hash is gone --------------------------------------

{
    r('DEL', $KEY);
    my ($rc, $out, $err) = ctl(['status', 'app']);
    is $rc, 0, 'status of a split without a hash' or diag $err;
    unlike $out, qr/nginx uses nginx\.conf weights/,
        'does not say nginx uses the nginx.conf weights';
    like $out, qr/every nginx keeps what it has in\s+force/,
        'says every nginx keeps what it has in force';
    like $out, qr/the next write, of any generation, applies/,
        'and what ends it';
}

done_testing;
