#!/usr/bin/perl
# A real origin for upgraded connections (a websocket-like tunnel):
#   upgrade_origin.pl PORT
# Answers every request with "101 Switching Protocols" and then echoes
# whatever comes until the client closes.  Forks a child per connection.
# Exits on SIGTERM.

use strict;
use warnings;
use IO::Socket::INET;
use POSIX qw(WNOHANG);

my ($port) = @ARGV;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                Listen => 64, ReuseAddr => 1)
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
    while ($buf !~ /\r\n\r\n/) {
        sysread($c, $buf, 65536, length $buf) or exit 0;
    }
    $buf =~ s/^.*?\r\n\r\n//s;

    syswrite($c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 . "Connection: Upgrade\r\n\r\n");

    syswrite($c, $buf) if length $buf;

    while (1) {
        my $n = sysread($c, $buf, 65536);
        exit 0 unless $n;
        syswrite($c, $buf);
    }
}
