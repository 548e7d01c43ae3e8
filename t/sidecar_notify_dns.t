#!/usr/bin/perl

# Story: a notify receiver whose host name takes long to resolve (its DNS
# server does not answer) does not stop the sidecar's loop.
#
# libcurl resolves in a thread of its own (Debian's build: AsynchDNS),
# but when a transfer times out while that thread is still in
# getaddrinfo(), libcurl waits for the thread when the transfer is
# cleaned up, unless CURLOPT_QUICK_EXIT: the sidecar's one thread was
# then held until getaddrinfo() gave up (here 20s), 15s after the
# connect timeout of 5s, at every attempt, and no step was taken
# meanwhile (a rollback included).
#
# The sidecar runs in a mount namespace of its own (unshare -m) where
# /etc/resolv.conf names a local DNS server that reads every query and
# never answers (timeout:20, attempts:1).  The claim: from the first
# query to 22s after it, the sidecar's state in Redis (saved at every
# step of a stage, with the readings of the nginx) never stands still
# for more than 3s; it steps every 250ms.  Needs root (a mount namespace,
# port 53).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(sleep time);
use SidecarTest qw(fast_plan);

# a machine that forbids mount namespaces (a container without
# CAP_SYS_ADMIN) cannot run it: optional there, as the Docker rehearsal
plan skip_all => 'optional: needs root: a mount namespace for a '
                 . 'resolv.conf of its own (unshare -m), and port 53'
    unless $> == 0 && system('unshare -m true >/dev/null 2>&1') == 0;

# a DNS server that reads and never answers; each query's time in LOG
my $SILENT_DNS = <<'EOF';
use IO::Socket::INET;
use Time::HiRes qw(time);
my ($addr, $log) = @ARGV;
my $s = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => 53,
                              Proto => 'udp') or die "bind $addr:53: $!\n";
$| = 1;
open my $fh, '>>', $log or die "$log: $!\n";
$fh->autoflush(1);
print $fh "ready\n";
while (1) { my $q; $s->recv($q, 4096) and print $fh time, "\n"; }
EOF

my $s = SidecarTest->new(name => 'notify-dns');
$s->start;

my $p = $s->prefix;
my $dns = sprintf '127.%d.%d.53', 100 + $$ % 100, 1 + int($$ / 100) % 250;

$s->t->spawn($^X, '-e', $SILENT_DNS, $dns, "$p/dns.log");
$s->wait_for(sub { -s "$p/dns.log" }, 10, "a silent DNS server on $dns");

open my $fh, '>', "$p/resolv.conf" or die "$p/resolv.conf: $!\n";
print $fh "nameserver $dns\noptions timeout:20 attempts:1\n";
close $fh;

my $plan = fast_plan();
$plan->{stages}[0]{hold} = '5m';        # steps in one stage throughout
$plan->{notify} = [{ url => 'http://notify.canary-test.example:9/hook' }];

$s->traffic(clients => 2, rate => 50);
$s->sidecar(plan => $plan,
            wrap => ['unshare', '-m', 'sh', '-c',
                     'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                     "$p/resolv.conf"]);

my $first;

$s->wait_for(sub { ($first) = _queries(); $first }, 20,
             'the sidecar asks the DNS server for the receiver')
    or $s->show_log;

# the state as it changes, until 22s after the first query
my ($last, $at, $gap, $changes) = ('', time, 0, 0);

while (time < ($first // time) + 22) {
    my $h = $s->state_hash;
    my $now = $h->{readings} // '';

    $now .= $h->{updated_at} // '';

    if ($now ne $last) {
        my $t = time;

        $gap = $t - $at if $t - $at > $gap;
        ($last, $at) = ($now, $t);
        $changes++;
    }

    sleep 0.1;
}

$gap = time - $at if time - $at > $gap;

diag sprintf 'the state changed %d times in 22s; it stood still %.1fs at '
             . 'most (%d DNS queries)', $changes, $gap, scalar _queries();

cmp_ok $gap, '<', 3, 'the loop went on while the name did not resolve';

my $log = $s->sidecar_log;

my $failed = qr{notify\[0\] http://notify\.canary-test\.example:9: }
             . qr{receipt \S+ \(rollout_started\) not delivered: }
             . qr{(Timeout|Resolving|Could not resolve|Couldn't resolve)};

like $log, qr/$failed/,
    'the failed delivery is logged';

$s->finish;

done_testing;


# the times of the queries the DNS server got
sub _queries {
    open my $q, '<', "$p/dns.log" or return ();
    return grep { /^\d/ } map { chomp; $_ } <$q>;
}
