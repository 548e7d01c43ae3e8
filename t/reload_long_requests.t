#!/usr/bin/perl

# Story: requests outlive their configuration.  A slow download, a long
# poll or a websocket keeps an old worker alive across any number of
# reloads (there may be no worker_shutdown_timeout), and when such a
# request ends the old worker counts it into its split's slot in the
# zone.  Meanwhile the operator removes, renames and adds splits, reload
# after reload.  Every request must be counted into its own split, never
# into another: a slot is not freed, nor given to another split, while a
# worker that may still write into it lives.
#
#   gen 1: split A takes 4 long requests (10 s, a slow origin) and one
#          upgraded connection (Upgrade: websocket, answered 101 by a
#          tiny origin that echoes); F takes fast requests throughout;
#   gen 2: A renamed A_v2, which takes 3 long requests and one upgrade;
#   gen 3 .. 10: the long locations go to a split renamed every reload
#          (L3 .. L10), idle splits X, Y, B, C, D, E come and go; A and
#          A_v2 come back in the last two.
#
# Afterwards (the long requests done, the tunnels closed, the old
# workers gone): A counts exactly 5, A_v2 exactly 4, F every fast one,
# and every split that received no traffic counts 0.  Then, once no
# worker that had A is left, a reload frees its slot: A comes back from
# zero.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $slow_port = $t->port('slow');
my $ws_port = $t->port('ws');
my $LONG_MS = 10000;

$t->spawn($^X, "$FindBin::Bin/lib/slow_origin.pl", $slow_port, $LONG_MS,
          "slow\n");
$t->spawn($^X, "$FindBin::Bin/lib/upgrade_origin.pl", $ws_port);

for my $p ($slow_port, $ws_port) {
    my $deadline = time + 10;
    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p")) {
        die "origin on $p does not listen\n" if time > $deadline;
        sleep 0.05;
    }
}

# $long: the split of the long locations; @idle: splits nobody routes to
sub conf {
    my ($long, @idle) = @_;

    my $splits = '';

    for my $s ($long, @idle) {
        my ($st, $ca) = $s eq $long ? ('slow_stable', 'slow_canary')
                                    : ('stable_up', 'canary_up');
        $splits .= "    canary_split $s { stable $st; canary $ca; "
                   . "weight 50; }\n";
    }

    # a cache: its manager and loader are children of the master too
    $t->write_conf(<<"EOF", workers => 2);
    canary_zone canary 16m;
    proxy_cache_path ${\ $t->prefix }/cache keys_zone=cache:1m;

    canary_split F { stable stable_up; canary canary_up; weight 50; }
$splits
${\ $t->origins }
    upstream slow_stable { server 127.0.0.1:$slow_port; }
    upstream slow_canary { server 127.0.0.1:$slow_port; }
    upstream ws_origin   { server 127.0.0.1:$ws_port; }

    server {
        listen 127.0.0.1:$port;

        location / {
            canary F;
            proxy_pass http://\$canary_upstream;
        }

        location /long {
            canary $long;
            proxy_pass http://\$canary_upstream;
        }

        location /ws {
            canary $long;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://ws_origin;
        }

        location = /canary_status { canary_status; }
    }
EOF
}

# a reload that does not wait for the old workers: they keep requests
sub reload_now {
    my %old = map { $_ => 1 } $t->worker_pids(all => 1);
    my $mark = $t->log_mark;

    my ($rc, $out) = $t->_run_nginx('-s', 'reload');
    die "nginx -s reload: exit $rc: $out\n" if $rc;

    my $deadline = time + 30;

    # the new workers run, and the old ones stopped accepting
    until (grep({ !$old{$_} } $t->worker_pids) >= 2
           && !grep({ $old{$_} } $t->worker_pids))
    {
        my $since = $t->log_since($mark);
        die "reload refused:\n$since\n" if $since =~ /\[emerg\]/;
        die "reload did not start new workers:\n$since\n" if time > $deadline;
        sleep 0.05;
    }

    # an old worker closes its listening sockets just after its title says
    # it is shutting down
    sleep 0.1;
}

sub status {
    my $r = $t->get($port, '/canary_status');
    die "status: $r->{status}\n" unless $r->{status} == 200;
    return decode_json($r->{content})->{splits};
}

sub requests {
    my ($s) = @_;
    return $s->{variants}{stable}{requests} + $s->{variants}{canary}{requests};
}

my $fast = 0;

sub fast {
    my ($tag) = @_;

    my $res = $t->request_many($port,
        [ map { { path => '/', headers => ['X-Tenant-Id' => "$tag-$_"] } }
          1 .. 10 ]);

    $fast += grep { $_->{status} == 200 } @$res;
}

sub open_long {
    my ($tenant) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!\n";
    print $s "GET /long HTTP/1.1\r\nHost: t\r\nX-Tenant-Id: $tenant\r\n"
             . "Connection: close\r\n\r\n";
    return $s;
}

sub open_ws {
    my ($tenant) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!\n";
    print $s "GET /ws HTTP/1.1\r\nHost: t\r\nX-Tenant-Id: $tenant\r\n"
             . "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

    my $head = read_until($s, qr/\r\n\r\n/, 10);
    die "no 101 for $tenant: $head\n" unless $head =~ m{^HTTP/1.1 101 };

    return $s;
}

sub read_until {
    my ($s, $re, $seconds) = @_;

    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + $seconds;

    while ($buf !~ $re && time < $deadline) {
        next unless $sel->can_read(0.2);
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }

    return $buf;
}

# the tunnel still works, through whatever worker holds it
sub echo {
    my ($s, $text) = @_;

    syswrite($s, $text);
    return read_until($s, qr/\Q$text\E/, 5) eq $text;
}

my @idle_seen;

# gen 1
conf('A');
$t->start;

my $t0 = time;
my @long_a = map { open_long("a$_") } 1 .. 4;
my $ws_a = open_ws('wa');
fast('g1');

# gen 2: A renamed
conf('A_v2');
reload_now();
my @long_v2 = map { open_long("v$_") } 1 .. 3;
my $ws_v2 = open_ws('wv');
fast('g2');

my @plan = (
    [ 'L3', qw(X) ],
    [ 'L4', qw(X Y) ],
    [ 'L5', qw(Y B) ],
    [ 'L6', qw(B C) ],
    [ 'L7', qw(B C D) ],
    [ 'L8', qw(C D E) ],
    [ 'L9', qw(A D E X) ],
    [ 'L10', qw(A A_v2 B C D E X Y) ],
);

my %idle_bad;

for my $p (@plan) {
    conf(@$p);
    reload_now();
    fast($p->[0]);

    # a split that never had traffic counts nothing, at any moment
    my $st = status();

    for my $name (grep { $_ ne 'A' && $_ ne 'A_v2' } @$p) {
        my $n = requests($st->{$name});
        $idle_bad{$name} //= $n if $n;
    }
}

diag(sprintf '10 configurations in %.1fs', time - $t0);

ok(echo($ws_a, "ping-a"), 'the tunnel of gen 1 still echoes after 9 reloads');
ok(echo($ws_v2, "ping-v2"), 'the tunnel of gen 2 still echoes');

my $ok = 0;

for my $s (@long_a, @long_v2) {
    my $r = read_until($s, qr/slow\n/, 30);
    $ok++ if $r =~ m{^HTTP/1.1 200 } && $r =~ /slow\n$/;
    close $s;
}

is($ok, 7, 'the 7 long requests were answered whole across the reloads');

close $ws_a;
close $ws_v2;

# the old workers finish: each counts its requests as they end
my $deadline = time + 30;
sleep 0.1 while $t->worker_pids(all => 1) > 2 && time < $deadline;
is(scalar($t->worker_pids(all => 1)), 2,
   'the old workers exited once their requests were done');

my $st = status();

is(requests($st->{A}), 5,
   'A: its 4 long requests and its upgraded connection, all in A');
is($st->{A}{variants}{stable}{responses}{'1xx'}
   + $st->{A}{variants}{canary}{responses}{'1xx'}, 1,
   'A: the upgraded connection counted as a 101 once it closed');
is(requests($st->{A_v2}), 4,
   'A_v2: its 3 long requests and its upgraded connection, all in A_v2');
is(requests($st->{F}), $fast, "F: the $fast fast requests, no more");

for my $name (qw(L10 B C D E X Y)) {
    my $n = requests($st->{$name});
    $idle_bad{$name} //= $n if $n;
}

is(join(', ', map { "$_: $idle_bad{$_}" } sort keys %idle_bad), '',
   'no split that received no traffic ever counted a request');

# A removed, and once the workers of the last configuration with A have
# exited, the next reload frees its slot: A comes back from zero; F's
# counters stay
my $created = $st->{A}{created};
conf('L11', qw(B));
reload_now();
$deadline = time + 30;
sleep 0.1 while $t->worker_pids(all => 1) > 2 && time < $deadline;
conf('L12', qw(B));
reload_now();
conf('L13', qw(A B));
reload_now();

$st = status();
is(requests($st->{A}), 0, 'with no old worker left, A was freed: back '
   . 'from zero');
ok($st->{A}{created} > $created, 'in a new slot (created moved)');
is(requests($st->{F}), $fast, 'F kept its counts');

$t->stop;

done_testing;
