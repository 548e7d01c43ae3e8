#!/usr/bin/perl

=head1 NAME

slow_origin.pl - the slow origin of the tests: a real HTTP server that
answers every request after a delay

=head1 SYNOPSIS

    perl t/lib/slow_origin.pl PORT DELAY_MS [BODY] [STATUS]

    # from a test: spawned as a CanaryTest helper, port ready on return
    Traffic::slow_origin($t, $t->port('slow'), 300, "canary slow\n");

=head1 DESCRIPTION

Listens on 127.0.0.1:PORT and answers each request, DELAY_MS
milliseconds after it was read, with STATUS (default 200), C<Content-Type:
text/plain> and BODY (default C<"slow\n">).  A child per connection, so
concurrent requests are delayed in parallel, not queued; keep-alive is
honoured, and a request saying C<Connection: close> (as nginx's
C<proxy_pass> sends by default) has its connection closed after the
answer.  A request body (C<Content-Length>) is read and ignored.  Exits
on SIGTERM.

Used by the tests through C<Traffic::slow_origin> (L<Traffic>), and by
C<scripts/demo>.  Core Perl only.

=cut

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Time::HiRes qw(sleep);
use ForkServer;

my ($port, $delay_ms, $body, $status) = @ARGV;
$body //= "slow\n";
$status //= 200;

ForkServer::serve($port, 256, sub {
    my ($c) = @_;
    my $buf = '';
    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($c, $buf, 65536, length $buf);
            return unless $n;
        }
        $buf =~ s/^(.*?)\r\n\r\n//s;
        my $head = $1;
        my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
        if ($len) {
            while (length $buf < $len) {
                sysread($c, $buf, 65536, length $buf) or return;
            }
            substr($buf, 0, $len) = '';
        }
        my $close = $head =~ /^connection:\s*close/mi;
        sleep($delay_ms / 1000) if $delay_ms > 0;
        print $c "HTTP/1.1 $status X\r\nContent-Length: " . length($body)
                 . "\r\nContent-Type: text/plain\r\n"
                 . ($close ? "Connection: close\r\n" : "") . "\r\n$body";
        return if $close;
    }
});
