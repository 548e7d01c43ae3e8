#!/usr/bin/perl

# Story: shadow traffic under load across reloads.  Two workers, every
# request mirrored to a canary that answers after 300 ms, clients on
# keep-alive connections, three reloads meanwhile.  No client sees an
# error, nginx logs no alert, and every shadow sent gets exactly one
# verdict: compared, or a timeout (the ones a reload ended), none lost
# and none counted twice.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use CanaryTest;
use Traffic;

my $t = CanaryTest->new;
my $port = $t->port('http');
my $stable = $t->port('origin:stable');
my $slow = $t->port('slow');

Traffic::slow_origin($t, $slow, 300, "same\n");

$t->write_conf(<<"END", workers => 2);
    canary_zone canary 4m;

    canary_split app {
        stable stable_up;
        canary slow_up;
        weight 0;
        shadow 100 timeout=10s;
    }

    upstream stable_up { server 127.0.0.1:$stable; }
    upstream slow_up { server 127.0.0.1:$slow; }

    server {
        listen 127.0.0.1:$stable;
        location / { return 200 "same\\n"; }
    }

    server {
        listen 127.0.0.1:$port;
        location / { canary app; proxy_pass http://\$canary_upstream; }
        location = /canary_status { canary_status; }
    }
END

$t->start;

sub shadow {
    my $r = $t->get($port, '/canary_status');
    return decode_json($r->{content})->{splits}{app}{shadow};
}

# clients: 4 processes, each 150 requests on one keep-alive connection
my @kids;

for my $k (1 .. 4) {
    my $pid = fork // die "fork: $!\n";

    if ($pid == 0) {
        my $bad = 0;

        for my $i (1 .. 150) {
            my $r = $t->get($port, "/c$k/$i", {}, keep_alive => 1);
            $bad++ unless $r->{status} == 200 && $r->{content} eq "same\n";
        }

        POSIX::_exit($bad > 255 ? 255 : $bad);
    }

    push @kids, $pid;
}

for (1 .. 3) {
    sleep 0.5;
    $t->reload;
}

my $failed = 0;

for my $pid (@kids) {
    waitpid $pid, 0;
    $failed += $? >> 8;
}

is($failed, 0, 'no client saw an error across three reloads');

my $sh;

for (1 .. 200) {
    $sh = shadow();
    last if $sh->{compared} + $sh->{timeouts} + $sh->{canary_errors}
            == $sh->{requests};
    sleep 0.1;
}

# counters are per zone: they add up over the old workers and the new
cmp_ok($sh->{requests}, '>', 0, "shadows sent: $sh->{requests}");
is($sh->{compared} + $sh->{timeouts} + $sh->{canary_errors},
   $sh->{requests}, 'every shadow sent got one verdict');
is($sh->{matched}, $sh->{compared}, 'every compared one matched');
is($sh->{canary_errors}, 0, 'no canary error');
is($sh->{requests} + $sh->{skipped}{in_flight}, 600,
   'every request was mirrored or skipped for the bound');

$t->stop;

done_testing;
