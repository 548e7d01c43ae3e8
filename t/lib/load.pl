#!/usr/bin/perl
# A bounded load generator for tests: exactly N requests, no more.
#   load.pl PORT N CLIENTS [PATH] [TENANTS]
# CLIENTS forked processes, each on keep-alive connections with pipelined
# batches; request i carries X-Tenant-Id: t<i % TENANTS>.  Prints one
# line: "sent N ok OK failed FAILED" (ok: any complete HTTP response, its
# status counted in the "status" fields that follow).

use strict;
use warnings;
use IO::Socket::INET;

my ($port, $n, $clients, $path, $tenants) = @ARGV;
$path //= '/';
$tenants ||= 1000;

my $BATCH = 50;
my $per = int(($n + $clients - 1) / $clients);
my @pipes;

for my $c (0 .. $clients - 1) {
    my $from = $c * $per;
    my $to = $from + $per - 1;
    $to = $n - 1 if $to > $n - 1;
    last if $from > $to;

    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        close $r;
        my %st = (ok => 0, failed => 0);
        my $i = $from;
        my $retries = 0;
        my $s;

        while ($i <= $to) {
            $s ||= IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                         Timeout => 10);
            if (!$s) { $st{failed}++; $i++; next; }

            my $end = $i + $BATCH - 1;
            $end = $to if $end > $to;
            my $req = '';
            for my $k ($i .. $end) {
                $req .= "GET $path HTTP/1.1\r\nHost: t\r\n"
                        . "X-Tenant-Id: t" . ($k % $tenants) . "\r\n\r\n";
            }
            syswrite($s, $req);

            my ($buf, $got) = ('', 0);
            my $want = $end - $i + 1;
            while ($got < $want) {
                if ($buf =~ /^HTTP\/1\.1 (\d+)[^\r]*\r\n(.*?)\r\n\r\n/s) {
                    my ($code, $head, $hl) = ($1, $2, $+[0]);
                    my ($len) = $head =~ /content-length:\s*(\d+)/i;
                    if (defined $len && length($buf) >= $hl + $len) {
                        substr($buf, 0, $hl + $len) = '';
                        $st{$code}++;
                        $st{ok}++;
                        $got++;
                        next;
                    }
                }
                my $r = sysread($s, $buf, 65536, length $buf);
                last unless $r;
            }
            # nginx closes a connection after keepalive_requests: what it
            # did not answer it did not read, so send the rest again
            if ($got < $want) {
                undef $s;
                if ($got == 0 && ++$retries > 3) {
                    $st{failed} += $want;
                    $i = $end + 1;
                    $retries = 0;
                }
                $i += $got;
                next;
            }
            $retries = 0;
            $i = $end + 1;
        }

        print $w join(' ', map { "$_=$st{$_}" } sort keys %st), "\n";
        exit 0;
    }

    close $w;
    push @pipes, $r;
}

my %total;
for my $r (@pipes) {
    my $line = <$r> // '';
    for (split ' ', $line) {
        my ($k, $v) = split /=/;
        $total{$k} += $v;
    }
}
1 while wait != -1;

$total{ok} //= 0;
$total{failed} //= 0;
print "sent $n ok $total{ok} failed $total{failed}",
      (map { " status$_=$total{$_}" } grep { /^\d+$/ } sort keys %total),
      "\n";
