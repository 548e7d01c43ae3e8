#!/usr/bin/perl

# Story: the sidecar's --listen port is reachable by someone hostile (or
# by a broken client).  Slowloris: 64 connections, 16 from each of four
# loopback addresses (the per-address limit), each sending its request
# line a byte a second and never finishing it.  Each byte restarts the
# 5s idle timeout, so before a connection had a deadline of its own they
# held every slot for as long as they liked and /healthz, the probe an
# orchestrator restarts the sidecar on, answered no one.  Now each
# connection is closed 10s after it opened, whatever it sends: /healthz
# answers again while they keep trickling.  No nginx nor Redis is needed:
# a sidecar that cannot reach them still turns its loop and serves.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

my $s = SidecarTest->new(name => 'listen-hostile');
my $t = $s->t;
my $lp = $t->port('listen');

$s->sidecar(plan => fast_plan(), args => ['--listen', "127.0.0.1:$lp"]);

sub healthz {
    my $res = $t->get($lp, '/healthz', undef, timeout => $_[0] || 3);
    return $res->{status};
}

$s->wait_for(sub { healthz() == 200 }, 20, '/healthz: 200')
    or $s->show_log;

# ---- slowloris: every slot, a byte a second each -------------------------

local $SIG{PIPE} = 'IGNORE';

my @lor;
for my $i (0 .. 63) {
    my $c = IO::Socket::INET->new(LocalAddr => '127.0.0.' . (1 + int($i / 16)),
                                  PeerAddr => "127.0.0.1:$lp")
        or die "connect $i: $!";
    $c->autoflush(1);
    push @lor, { sock => $c, opened => time };
}

my $line = "GET /metrics?" . ('x' x 1000);
my $sent = 0;
my $t0 = time;

# a byte a second on each open one; the time each was closed
my $trickle = sub {
    my ($until) = @_;
    while (time < $until) {
        my $c = substr($line, $sent++ % length($line), 1);
        for my $l (grep { !$_->{closed} } @lor) {
            if (IO::Select->new($l->{sock})->can_read(0)) {
                my $n = sysread($l->{sock}, my $buf, 4096);
                if (!$n) { $l->{closed} = time; next; }
            }
            syswrite($l->{sock}, $c) or $l->{closed} = time;
        }
        sleep 1;
    }
};

$trickle->(time + 3);
is(scalar(grep { !$_->{closed} } @lor), 64,
   '64 trickling connections held: every slot taken');
my $during = healthz(1);
note "/healthz while they hold every slot: " . ($during // '?');

# within the deadline (10s) and a few steps more, a probe gets in again
my $ok;
my $deadline = $t0 + 20;
while (time < $deadline) {
    $trickle->(time + 1);
    last if $ok = healthz(1) == 200;
}
ok($ok, sprintf '/healthz answers 200 again %.1fs after they came, while '
                . 'they trickle', time - $t0)
    or $s->show_log;

# the server accepted them over a few of its waits: they end as
# spread out
while (grep({ !$_->{closed} } @lor) && time < $t0 + 25) {
    $trickle->(time + 1);
}
my @closed = grep { $_->{closed} } @lor;
is(scalar @closed, 64, 'the server closed every trickling connection '
   . '(its 10s deadline), though each sent a byte a second');
my ($first) = sort { $a <=> $b } map { $_->{closed} - $_->{opened} } @closed;
cmp_ok($first // 0, '>=', 9, sprintf 'none before its deadline (the first '
       . 'after %.1fs)', $first // 0);
close $_->{sock} for @lor;

is(healthz(), 200, '/healthz: 200 after them');

$s->finish;

done_testing;
