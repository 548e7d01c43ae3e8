package NotifyReceiver;

=head1 NAME

NotifyReceiver - a real HTTP receiver of canary-sidecar's notifications
(t/lib/notify_receiver.pl) for the stories

=head1 SYNOPSIS

    my $rx = NotifyReceiver->new($s->t, 'a');   # a CanaryTest, a name
    $rx->start;
    my $url = $rx->url;                         # http://127.0.0.1:PORT/hook
    $rx->mode('500');                           # ok, 500, hang
    $rx->stop;                                  # down: connections refused
    my @req = $rx->requests;                    # each request, oldest first
    my @ok = $rx->delivered;                    # those answered 200

=head1 DESCRIPTION

The receiver runs as a helper of the CanaryTest (its teardown stops it),
on a port of its own that stays the same across stop and start.  Each
request is C<{at, mode, method, path, headers, body}>; a request held
by C<hang> gets C<closed_at>, when the client gave up on it.  Core Perl
only.

=cut

use strict;
use warnings;

use File::Basename qw(dirname);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $SCRIPT = dirname(__FILE__) . '/notify_receiver.pl';


sub new {
    my ($class, $t, $name) = @_;

    my $p = $t->prefix;

    return bless {
        t    => $t,
        name => $name,
        port => $t->port("notify-$name"),
        log  => "$p/notify-$name.jsonl",
        mode_file => "$p/notify-$name.mode",
    }, $class;
}


sub port { $_[0]{port} }
sub url  { "http://127.0.0.1:$_[0]{port}/hook/$_[0]{name}" }


sub start {
    my ($self) = @_;

    $self->{pid} = $self->{t}->spawn($^X, $SCRIPT, $self->{port},
                                     $self->{log}, $self->{mode_file});

    my $deadline = time + 10;

    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                 Timeout => 1)) {
        die "NotifyReceiver: port $self->{port} does not accept\n"
            if time > $deadline || !kill 0, $self->{pid};
        sleep 0.02;
    }

    return $self;
}


# the port closed: the sidecar's connections are refused
sub stop {
    my ($self) = @_;

    my $pid = delete $self->{pid} or return;

    kill 'TERM', $pid;
    waitpid $pid, 0;
}


sub mode {
    my ($self, $mode) = @_;

    open my $fh, '>', "$self->{mode_file}.tmp" or die "$self->{mode_file}: $!";
    print $fh "$mode\n";
    close $fh;
    rename "$self->{mode_file}.tmp", $self->{mode_file};
}


sub requests {
    my ($self) = @_;

    open my $fh, '<', $self->{log} or return ();

    my (@r, %open);

    while (my $line = <$fh>) {
        my $r = decode_json($line);

        if ($r->{closed}) {
            my ($req) = grep { !$_->{closed_at} } @{$open{$r->{id} // ''}};
            $req->{closed_at} = $r->{at} if $req;
            next;
        }

        push @r, $r;
        push @{$open{$r->{headers}{'x-canary-receipt-id'} // ''}}, $r
            if $r->{mode} eq 'hang';
    }

    return @r;
}


sub delivered { grep { $_->{mode} eq 'ok' } $_[0]->requests }


1;
