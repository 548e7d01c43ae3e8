#!/usr/bin/perl

=head1 NAME

fake_sentinel.pl - a sentinel that says what the test wants: the hostile
or broken peer of the Sentinel stories

=head1 SYNOPSIS

    perl t/lib/fake_sentinel.pl PORT DIR

=head1 DESCRIPTION

Listens on 127.0.0.1:PORT, a child per connection, and reads RESP
commands.  What it answers is read from files in DIR at each command, so
a test changes it while it runs:

=over

=item DIR/ask

The raw reply to C<SENTINEL get-master-addr-by-name>, Perl-style escapes
(C<\r\n>) undone; the word C<silent> answers nothing, ever.  Without the
file, C<-ERR no ask>.  Silent, it still reads, and the connection's
child exits when the client closes.

=item DIR/push

After C<SUBSCRIBE CHANNEL> is confirmed, the raw bytes sent next (a
message, or garbage), once; the word C<silent> does not even confirm.

=back

Each command is appended to DIR/log, one a line, as the words it had.
Exits on SIGTERM.  Core Perl only.

=cut

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use ForkServer;

my ($port, $dir) = @ARGV;

# a child outlives this process while its client is connected: not the
# test's output, which prove reads to the end
open STDOUT, '>', '/dev/null';

sub slurp {
    my ($name) = @_;

    open my $fh, '<', "$dir/$name" or return undef;
    local $/;
    my $s = <$fh> // '';
    $s =~ s/\\r/\r/g;
    $s =~ s/\\n/\n/g;

    return $s;
}

sub command {
    my ($c) = @_;

    my $line = <$c> // return undef;
    return [ split ' ', $line ] unless $line =~ /^\*(\d+)/;

    my @words;

    for (1 .. $1) {
        my $len = <$c> // return undef;
        $len =~ /^\$(\d+)/ or return undef;
        read($c, my $w, $1 + 2) or return undef;
        push @words, substr($w, 0, $1);
    }

    return \@words;
}

ForkServer::serve($port, 64, sub {
    my ($c) = @_;

    $c->autoflush(1);

    while (my $cmd = command($c)) {
        if (open my $log, '>>', "$dir/log") {
            print $log "@$cmd\n";
            close $log;
        }

        my $verb = lc($cmd->[0] // '');

        if ($verb eq 'sentinel') {
            my $ask = slurp('ask') // "-ERR no ask\r\n";
            print $c $ask unless $ask eq 'silent';

        } elsif ($verb eq 'subscribe') {
            my $push = slurp('push') // '';
            next if $push eq 'silent';
            my $ch = $cmd->[1] // '';
            print $c "*3\r\n\$9\r\nsubscribe\r\n\$" . length($ch)
                     . "\r\n$ch\r\n:1\r\n" . $push;

        } elsif ($verb eq 'ping') {
            print $c "+PONG\r\n";

        } else {
            print $c "-ERR unknown command\r\n";
        }
    }
});
