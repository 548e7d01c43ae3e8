package ForkServer;

=head1 NAME

ForkServer - the listening loop of the tests' small origins

=head1 SYNOPSIS

    use ForkServer;
    ForkServer::serve($port, 256, sub { my ($c) = @_; ... });

=head1 DESCRIPTION

Listens on 127.0.0.1:PORT (backlog LISTEN) and runs the handler in a
child per connection, so concurrent connections are served in
parallel; a child exits when its handler returns.  Exits on SIGTERM.
Used by F<slow_origin.pl> and F<upgrade_origin.pl>.  Core Perl only.

=cut

use strict;
use warnings;
use IO::Socket::INET;
use POSIX qw(WNOHANG);

sub serve {
    my ($port, $listen, $handle) = @_;

    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port,
                                    Listen => $listen, ReuseAddr => 1)
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
        $handle->($c);
        exit 0;
    }
}

1;
