#!/usr/bin/perl
# A real HTTP origin that answers every request after a delay:
#   slow_origin.pl PORT DELAY_MS [BODY] [STATUS]
# Forks a child per connection (keep-alive honoured), so concurrent
# requests are delayed in parallel, not queued.  Exits on SIGTERM.

use strict;
use warnings;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

my ($port, $delay_ms, $body, $status) = @ARGV;
$body //= "slow\n";
$status //= 200;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                Listen => 256, ReuseAddr => 1)
    or die "listen $port: $!";

$SIG{CHLD} = sub { 1 while waitpid(-1, WNOHANG) > 0 };
$SIG{TERM} = sub { exit 0 };

while (1) {
    my $c = $srv->accept or next;
    my $pid = fork;
    if (!defined $pid) { close $c; next; }
    if ($pid) { close $c; next; }

    close $srv;
    $SIG{TERM} = 'DEFAULT';
    my $buf = '';
    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($c, $buf, 65536, length $buf);
            exit 0 unless $n;
        }
        $buf =~ s/^(.*?)\r\n\r\n//s;
        my $head = $1;
        my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
        if ($len) {
            while (length $buf < $len) {
                sysread($c, $buf, 65536, length $buf) or exit 0;
            }
            substr($buf, 0, $len) = '';
        }
        my $close = $head =~ /^connection:\s*close/mi;
        sleep($delay_ms / 1000) if $delay_ms > 0;
        print $c "HTTP/1.1 $status X\r\nContent-Length: " . length($body)
                 . "\r\nContent-Type: text/plain\r\n"
                 . ($close ? "Connection: close\r\n" : "") . "\r\n$body";
        exit 0 if $close;
    }
}
