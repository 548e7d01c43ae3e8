#!/usr/bin/perl

# Story: a subscription that dies silently is found out and replaced.
#
# nginx reaches Redis through a TCP relay (a middlebox).  The relay then
# stops passing anything on the subscriber's connection, and on every
# subscriber connection made after it, without closing them: the
# subscription is dead while the command connection still answers.  nginx
# probes the subscriber every interval: within a few intervals it logs that
# the subscriber did not answer, and the status page and Prometheus say
# connected false while no subscription works.  Once the relay passes the
# subscriber again, nginx reconnects: connected true, and a write is
# applied by its PUBLISH although the poll interval is long.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use CanaryTest;
use RedisStory qw(:all);

my $t = CanaryTest->new;
my $rport = $t->redis_start;
my $relay_port = $t->port('relay');
my $redis = "127.0.0.1:$rport";

# ---- the relay ------------------------------------------------------------
#
# SIGUSR1: every connection that sent SUBSCRIBE stops being relayed, and so
# does every one that sends it from then on; SIGUSR2: new ones are relayed
# again (the stalled ones stay stalled, open).

sub relay {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $relay_port, Listen => 64,
                                    ReuseAddr => 1)
        or die "relay: listen: $!";
    my ($stall, %peer, %subscriber, %stalled) = (0);
    my $sel = IO::Select->new($srv);

    $SIG{USR1} = sub { $stall = 1 };
    $SIG{USR2} = sub { $stall = 0 };
    $SIG{TERM} = sub { exit 0 };

    while (1) {
        if ($stall) {
            for my $fh (grep { $subscriber{$_} } keys %peer) {
                $stalled{$fh} = $stalled{$peer{$fh}} = 1;
            }
        }

        my @ready = $sel->can_read(0.05);

        for my $fh (@ready) {
            if ($fh == $srv) {
                my $c = $srv->accept or next;
                my $r = IO::Socket::INET->new(PeerAddr => $redis) or do {
                    close $c;
                    next;
                };
                $peer{$c} = $r;
                $peer{$r} = $c;
                $sel->add($c, $r);
                next;
            }

            next if $stalled{$fh} || !$peer{$fh};

            my $n = sysread($fh, my $buf, 65536);
            my $to = $peer{$fh};

            if (!$n) {
                $sel->remove($fh, $to);
                delete @peer{$fh, $to};
                close $fh;
                close $to;
                next;
            }

            $subscriber{$fh} = 1 if $buf =~ /SUBSCRIBE/i;
            syswrite($to, $buf);
        }
    }
}

my $relay = fork // die "fork: $!";
if ($relay == 0) {
    relay();
    POSIX::_exit(0);
}
END { kill 'TERM', $relay if $relay }

ok defined wait_until(10, sub {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$relay_port") }),
    'the relay listens';

# a long interval: a write applied at once came by PUBLISH
$t->write_conf(redis_split_conf($t,
                   redis => "127.0.0.1:$relay_port interval=1s "
                            . "timeout=300ms"),
               workers => 1);
$t->start;

# canary-ctl writes a split only once a live nginx reports it: its first
# report comes an interval after it starts
ok wait_nodes($redis, 'app', 1), 'nginx reports split app';

sub connected { status_json($t)->{redis}{connected} }

sub weight { status_json($t)->{splits}{app}{weight} }

sub prom_connected {
    my ($v) = status_text($t, 'prometheus')
              =~ /^canary_redis_connected (\d)$/m;
    return $v;
}

ok defined wait_until(5, sub { connected() }), 'connected';
ctl_ok($redis, 'set-weight', 'app', 10);
ok defined wait_until(3, sub { weight() == 10 }),
    'weight 10';

# ---- the subscription dies --------------------------------------------------

my $mark = $t->log_mark;
kill 'USR1', $relay;

ok defined $t->wait_for_log(qr/did not answer the subscriber connection/,
                            10, $mark),
    'nginx finds the subscriber silent';
ok defined wait_until(5, sub { !connected() }), 'status: connected false';
is prom_connected(), 0, 'canary_redis_connected 0';

sleep 2;
ok !connected(), 'still false while no subscription works';

# ---- the relay passes subscribers again -----------------------------------

kill 'USR2', $relay;

ok defined wait_until(10, sub { connected() }), 'connected again';
is prom_connected(), 1, 'canary_redis_connected 1';
ok defined $t->wait_for_log(qr/canary_redis: connected to/, 3, $mark),
    'logged: connected';

my $t0 = time;
ctl_ok($redis, 'set-weight', 'app', 20);
ok defined wait_until(3, sub { weight() == 20 }),
    sprintf('a write applies (after %dms)', (time - $t0) * 1000);

$t->allow_log(qr/did not answer|lost the subscriber/);
$t->stop;

done_testing;
