#!/usr/bin/perl

# Story: Redis restarts empty (no persistence, a failover to an empty
# replica, a FLUSHALL) while nginx cannot see it, and the first write
# after it lands before nginx has reconnected.
#
# Writers start again from generation 1 (canary-ctl and the sidecar both
# HINCRBY the generation of a hash that is gone).  nginx forgets the
# generation it applied when it sees the hash gone; if the first thing
# it sees is the new hash, generation 1 is "older" than the one it
# applied before, and the write is ignored as stale, and so is every
# write after it until the generation passes the old one.  Here the
# write is a rollback to weight 0 and nginx stays at 30.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $CTL = "$FindBin::Bin/../scripts/canary-ctl";

my $t = CanaryTest->new;
my $port = $t->port('http');
my $redis = '127.0.0.1:' . $t->redis_port;

$t->redis_start;

$t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 1m;
    canary_redis $redis interval=200ms timeout=200ms;

    canary_split app {
        stable stable_up;
        canary canary_up;
        weight 5;
    }

${\ $t->origins }
    server {
        listen 127.0.0.1:$port;

        location / {
            canary app;
${\ CanaryTest::expose_vars() }
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status {
            canary_status;
        }
    }
EOF

$t->start;

sub ctl {
    my $out = `$CTL --redis $redis @_ 2>&1`;
    return ($? >> 8, $out);
}

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok(wait_for(10, sub { (ctl('fleet', 'app', '--json'))[1] =~ /"node":/ }),
   'nginx reports split app');

sub status {
    my $r = $t->get($port, '/canary_status');
    return $r->{status} == 200 ? decode_json($r->{content}) : undef;
}

sub wait_for {
    my ($seconds, $cond) = @_;

    my $t0 = time;

    until ($cond->()) {
        return undef if time - $t0 > $seconds;
        sleep 0.05;
    }

    return time - $t0;
}

# generation 6, weight 30
for my $w (10, 15, 20, 25, 28, 30) {
    my ($rc, $out) = ctl('set-weight', 'app', $w);
    is($rc, 0, "canary-ctl set-weight app $w") or diag($out);
}

ok(wait_for(5, sub {
        my $s = status();
        $s && $s->{splits}{app}{weight} == 30
        && $s->{splits}{app}{generation} == 6 }),
   'nginx at weight 30, generation 6');

# Redis goes away long enough for nginx's reconnect backoff to grow, and
# comes back empty
$t->redis_stop;
unlink $t->prefix . '/redis/dump.rdb';

ok(wait_for(5, sub { !status()->{redis}{connected} }),
   'nginx sees Redis gone');
sleep 2;

$t->redis_start;

# the rollback, at once: generation 1 of a new hash
# forced: no nginx reported to the empty Redis yet
my ($rc, $out) = ctl('rollback', 'app', '--reason', 'restart-drill',
                     '--force');
is($rc, 0, 'canary-ctl rollback app right after Redis is back')
    or diag($out);
is($t->redis_cli('HGET', 'canary:app', 'generation'), '1',
   'the new hash starts at generation 1');

my $took = wait_for(8, sub {
    my $s = status();
    $s && $s->{redis}{connected} && $s->{splits}{app}{weight} == 0 });

my $s = status();

ok(defined $took, 'the rollback to weight 0 applies once nginx is back')
    or diag('nginx: weight ' . $s->{splits}{app}{weight} . ', generation '
            . $s->{splits}{app}{generation} . ', connected '
            . ($s->{redis}{connected} ? 'true' : 'false') . "\n"
            . join "\n", grep { /canary_redis/ }
                         split /\n/, $t->error_log);

my $d = $t->route($port, '/', { 'X-Tenant-Id' => 'probe' });
is($d->{weight}, 0, 'requests route at weight 0');

$t->stop;

done_testing;
