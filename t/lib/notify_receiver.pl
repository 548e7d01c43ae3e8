#!/usr/bin/perl

=head1 NAME

notify_receiver.pl - the notification receiver of the tests: a real HTTP
server that records every request canary-sidecar sends it

=head1 SYNOPSIS

    perl t/lib/notify_receiver.pl PORT LOG MODE_FILE

=head1 DESCRIPTION

Listens on 127.0.0.1:PORT, a child per connection.  Each request (its
headers and body, read to its C<Content-Length>) is appended to LOG as
one JSON line C<{"at", "mode", "method", "path", "headers", "body"}>
(header names in lower case), before it is answered as MODE_FILE says
when the request comes:

=over

=item C<ok> (or no file): 200, and the connection closed (no
keep-alive: a receiver stopped is down for every connection)

=item C<500>: 500

=item C<hang>: no answer; the connection is held until the client
closes it, and then a second line C<{"at", "closed": true, "id"}> is
appended, C<id> the receipt id of the request (its
C<X-Canary-Receipt-Id>)

=back

A receiver that is down is this one stopped (SIGTERM): its port is
closed, connections are refused.  Core Perl only.

=cut

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Fcntl qw(:flock);
use JSON::PP;
use Time::HiRes qw(time);
use ForkServer;

my ($port, $log, $mode_file) = @ARGV;

sub record {
    my ($r) = @_;

    open my $fh, '>>', $log or die "notify_receiver: $log: $!\n";
    flock $fh, LOCK_EX;
    print $fh JSON::PP->new->canonical->encode($r), "\n";
    close $fh;
}

ForkServer::serve($port, 64, sub {
    my ($c) = @_;
    my $buf = '';

    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($c, $buf, 65536, length $buf);
            return unless $n;
        }

        $buf =~ s/^(.*?)\r\n\r\n//s;
        my ($line, @lines) = split /\r\n/, $1;
        my ($method, $path) = split / /, $line;
        my %h;

        for (@lines) {
            my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
            $h{lc $k} = $v;
        }

        my $len = $h{'content-length'} || 0;

        while (length $buf < $len) {
            sysread($c, $buf, 65536, length $buf) or return;
        }

        my $body = substr($buf, 0, $len, '');
        my $mode = 'ok';

        if (open my $fh, '<', $mode_file) {
            $mode = <$fh> // 'ok';
            chomp $mode;
        }

        record({ at => time, mode => $mode, method => $method,
                 path => $path, headers => \%h, body => $body });

        if ($mode eq 'hang') {
            # until the client gives up
            1 while sysread($c, my $x, 4096);
            record({ at => time, closed => JSON::PP::true,
                     id => $h{'x-canary-receipt-id'} });
            return;
        }

        my $status = $mode eq '500' ? '500 Internal Server Error' : '200 OK';

        # no keep-alive: a receiver stopped is down for every connection
        print $c "HTTP/1.1 $status\r\nContent-Length: 3\r\n"
                 . "Content-Type: text/plain\r\nConnection: close\r\n"
                 . "\r\nok\n";
        return;
    }
});
