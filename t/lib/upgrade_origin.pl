#!/usr/bin/perl
# A real origin for upgraded connections (a websocket-like tunnel):
#   upgrade_origin.pl PORT
# Answers every request with "101 Switching Protocols" and then echoes
# whatever comes until the client closes.  Forks a child per connection.
# Exits on SIGTERM.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use ForkServer;

my ($port) = @ARGV;

ForkServer::serve($port, 64, sub {
    my ($c) = @_;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        sysread($c, $buf, 65536, length $buf) or return;
    }
    $buf =~ s/^.*?\r\n\r\n//s;

    syswrite($c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 . "Connection: Upgrade\r\n\r\n");

    syswrite($c, $buf) if length $buf;

    while (1) {
        my $n = sysread($c, $buf, 65536);
        return unless $n;
        syswrite($c, $buf);
    }
});
