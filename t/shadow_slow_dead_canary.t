#!/usr/bin/perl

# Story: the client never waits for its shadow and never sees its errors.
# Under "shadow 100", a canary that answers after 2 s leaves every client
# response complete while its shadow is still in flight (and well before
# the 2 s); a canary that is down (connection refused) costs the clients
# no error and is counted in canary_errors; a canary slower than
# timeout= is counted in timeouts, and its shadow is ended then, not
# when the canary answers (the slot in flight is free again: the next
# shadows are sent, none skipped).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use CanaryTest;
use Traffic;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $stable = $t->port('origin:stable');
my $slow = $t->port('slow');
my $dead = $t->port('dead');       # nothing listens there
my $hang = $t->port('hang');

Traffic::slow_origin($t, $slow, 2000, "stable body\n");

# a canary that never answers: connections are made (the backlog) and
# wait for ever; a shadow that ends was ended by timeout=
my $hang_listener = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$hang",
                                          Listen => 256, ReuseAddr => 1)
    or die "listen on $hang: $!\n";

$t->write_conf(<<"END");
    canary_zone canary 4m;

    canary_split slow {
        stable stable_up;
        canary slow_up;
        weight 0;
        shadow 100 timeout=30s;
    }

    canary_split dead {
        stable stable_up;
        canary dead_up;
        weight 0;
        shadow 100;
    }

    canary_split hanglong {
        stable stable_up;
        canary hang_up;
        weight 0;
        shadow 100 timeout=120s;
    }

    canary_split bound {
        stable stable_up;
        canary hang_up;
        weight 0;
        shadow 100 timeout=120s;
    }

    canary_split hang {
        stable stable_up;
        canary hang_up;
        weight 0;
        shadow 100 timeout=300ms;
    }

    upstream stable_up { server 127.0.0.1:$stable; }
    upstream slow_up { server 127.0.0.1:$slow; }
    upstream dead_up { server 127.0.0.1:$dead; }
    upstream hang_up { server 127.0.0.1:$hang; }

    server {
        listen 127.0.0.1:$stable;
        location / { return 200 "stable body\\n"; }
    }

    server {
        listen 127.0.0.1:$port;

        location /slow { canary slow; proxy_pass http://\$canary_upstream; }
        location /dead { canary dead; proxy_pass http://\$canary_upstream; }
        location /hang { canary hang; proxy_pass http://\$canary_upstream; }
        location /bound {
            canary bound;
            proxy_read_timeout 120s;
            proxy_pass http://\$canary_upstream;
        }
        location /long {
            canary hanglong;
            proxy_read_timeout 120s;
            proxy_pass http://\$canary_upstream;
        }

        location = /canary_status { canary_status; }
    }
END

$t->start;

sub shadow {
    my ($name) = @_;
    my $r = $t->get($port, '/canary_status');
    return decode_json($r->{content})->{splits}{$name}{shadow};
}

sub settled {
    my ($name, $want, $seconds) = @_;
    my $sh;

    for (1 .. $seconds * 10) {
        $sh = shadow($name);
        my $done = $sh->{compared} + $sh->{canary_errors} + $sh->{timeouts};
        last if $sh->{requests} >= $want && $done == $sh->{requests};
        sleep 0.1;
    }

    return $sh;
}

# a slow canary: each response is whole while its shadow still runs
{
    my $n = 5;
    my ($ok, $pending, $slowest) = (0, 0, 0);

    for my $i (1 .. $n) {
        my $start = time;
        my $r = $t->get($port, "/slow/$i");
        my $took = time - $start;

        $slowest = $took if $took > $slowest;
        $ok++ if $r->{status} == 200 && $r->{content} eq "stable body\n";

        my $sh = shadow('slow');
        $pending++ if $sh->{requests} == $i && $sh->{compared} == 0;
    }

    is($ok, $n, 'slow canary: every client got stable\'s whole response');
    is($pending, $n, 'slow canary: each before its shadow was compared');
    cmp_ok($slowest, '<', 2, 'slow canary: no client waited the canary\'s 2 s');

    my $sh = settled('slow', $n, 20);
    is($sh->{compared}, $n, 'slow canary: compared once it answered');
    is($sh->{matched}, $n, 'slow canary: and matched');
}

# the same on one keep-alive connection: the next request does not wait
# for the shadow of the one before
{
    my $n = 5;
    my ($ok, $pending) = (0, 0);
    my $start = time;
    my $before = shadow('slow');

    for my $i (1 .. $n) {
        my $r = $t->get($port, "/slow/k$i", {}, keep_alive => 1);
        $ok++ if $r->{status} == 200 && $r->{content} eq "stable body\n";

        my $sh = shadow('slow');
        $pending++ if $sh->{compared} == $before->{compared};
    }

    my $took = time - $start;

    is($ok, $n, 'keep-alive: every client got stable\'s whole response');
    is($pending, $n, 'keep-alive: all while the shadows were in flight');
    cmp_ok($took, '<', 2, "keep-alive: $n requests before one canary answer");

    my $sh = settled('slow', $before->{requests} + $n, 20);
    is($sh->{matched}, $before->{matched} + $n,
       'keep-alive: each shadow compared once the canary answered');
}

# a dead canary: the clients see nothing of it
{
    my $n = 10;
    my $ok = 0;

    for my $i (1 .. $n) {
        my $r = $t->get($port, "/dead/$i");
        $ok++ if $r->{status} == 200 && $r->{content} eq "stable body\n";
    }

    is($ok, $n, 'dead canary: 0 client errors');

    my $sh = settled('dead', $n, 10);
    is($sh->{requests}, $n, 'dead canary: every request mirrored');
    is($sh->{canary_errors}, $n, 'dead canary: counted in canary_errors');
    is($sh->{compared}, 0, 'dead canary: nothing compared');
    $t->allow_log(qr/connect\(\) failed/);
}

# a canary slower than timeout=: counted and ended at the timeout (the
# canary never answers)
{
    my $n = 3;

    for my $i (1 .. $n) {
        my $r = $t->get($port, "/hang/$i");
        is($r->{status}, 200, "timeout: client $i served");
    }

    my $sh = settled('hang', $n, 20);
    is($sh->{timeouts}, $n, 'timeout: ended and counted in timeouts');
    is($sh->{compared}, 0, 'timeout: not compared');
    is($sh->{skipped}{in_flight}, 0, 'timeout: none skipped');
    is($sh->{canary_errors}, 0, 'timeout: not a canary error');
}

# a worker that shuts down (a reload, a stop) ends its shadows at once,
# not when a canary that never answers would time out (120 s here)
{
    for my $i (1 .. 3) {
        is($t->get($port, "/long/$i")->{status}, 200, "long $i: served");
    }

    is(shadow('hanglong')->{requests}, 3, 'three shadows in flight');

    my $start = time;
    $t->reload;
    cmp_ok(time - $start, '<', 60,
           'a reload: the old worker did not wait for its shadows');

    my $sh = shadow('hanglong');
    is($sh->{timeouts}, 3, 'ended at the reload, counted in timeouts');

    is($t->get($port, "/long/4")->{status}, 200, 'after the reload: served');
}

# at most 64 shadows in flight per worker (one worker here, one shadow
# of /long/4 in flight already): 63 more are sent, the rest skipped and
# counted, and every client is served
{
    my $ok = 0;

    for my $i (1 .. 70) {
        $ok++ if $t->get($port, "/bound/$i")->{status} == 200;
    }

    my $sh = shadow('bound');
    is($ok, 70, 'the bound: every client served');
    is($sh->{requests}, 63, 'the bound: 64 shadows in flight at most');
    is($sh->{skipped}{in_flight}, 7, 'the bound: the others skipped, counted');
}

$t->stop;

done_testing;
