// AffettoClient.cs: the affetto client for Unity and plain .NET / Mono (protocol version 1, OSC over UDP).
//
// One file, no dependency beyond the .NET base library. It holds:
//   * Affetto.Osc               a tiny OSC 1.0 encoder/decoder (messages and bundles);
//   * Affetto.AffettoOscClient  the client: operations (emotion, state, stinger, volume, text, ...)
//                               and events (beat, bar, transition, status, hello, note, volume, text,
//                               error), raised by Poll();
//   * Affetto.AffettoClient     (Unity only) a MonoBehaviour wrapper that calls Poll() in Update(),
//                               so every event is raised on Unity's main thread.
// Outside Unity (compiled with `mcs`, or any C# compiler) only the first two exist.
//
// The protocol is bindings/PROTOCOL.md in the affetto repository. One UDP socket both sends the
// operations and receives the events: Subscribe() asks the server to send events back to that
// socket's port, which makes this socket's address a client of its own on the server, with a
// session of its own (until then the server counts it as its host's, like any one-shot sender).

using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
#if UNITY_5_3_OR_NEWER
using UnityEngine;
#endif

namespace Affetto
{
    /// <summary>Raised on every beat: bar number, beat in the bar (0 = downbeat), tempo, and when
    /// the beat sounds on the session's clock (seconds since the session started).</summary>
    public delegate void BeatHandler(int bar, int beat, float tempoBpm, float timeS);

    /// <summary>Raised at the start of every bar with the session's current musical state: its key
    /// ("Bb minor"), the layers heard in it (those with a note sounding in the bar, not those merely
    /// switched on) and when its downbeat sounds on the session's clock.</summary>
    public delegate void BarHandler(int bar, string state, float valence, float arousal, float tension, float tempoBpm,
                                    string key, string[] layers, float timeS);

    /// <summary>Raised when a scheduled change (op: "state", "emotion", "leitmotif", ...) lands,
    /// at that beat of the session.</summary>
    public delegate void TransitionHandler(string op, float beat);

    /// <summary>The answer to Status() (and to the keep-alive).</summary>
    public delegate void StatusHandler(AffettoStatus status);

    /// <summary>The answer to Hello(): what the session's profile and the server offer.</summary>
    public delegate void HelloHandler(AffettoHello hello);

    /// <summary>The answer to Sessions(): the sessions open on the server (at most 256, by name) and
    /// each one's profile, in the same order.</summary>
    public delegate void SessionsHandler(string[] names, string[] profiles);

    /// <summary>One note of the session, with the "notes" output (SetOutputs(AffettoOscClient.NotesOutput)):
    /// MIDI channel (0..15), pitch (0..127), velocity (1..127 for a note-on, 0 for a note-off), the
    /// profile layer it belongs to ("stinger" for a stinger's notes), and when it sounds on the
    /// session's clock (the clock of OnBeat's timeS). Play it with the game's own instruments.</summary>
    public delegate void NoteHandler(int channel, int pitch, int velocity, string layer, float timeS);

    /// <summary>A volume change starts: the layer (null: the whole session), the level it moves to in
    /// [0, 1], over fadeS seconds (0: at once), from timeS on the session's clock.</summary>
    public delegate void VolumeHandler(string layer, float level, float fadeS, float timeS);

    /// <summary>The reading of a line of story text sent with Text(), once the server has read it.</summary>
    public delegate void TextHandler(AffettoText text);

    /// <summary>An error reported by the server (code: bad_argument, unknown_op, rate_limited, ...), or
    /// found by the client: a malformed packet from the server ("bad_message"), or the socket failed
    /// and no more events will come ("closed").</summary>
    public delegate void ErrorHandler(string code, string message);

    /// <summary>The session's status (the answer to <see cref="AffettoOscClient.Status"/>). While stopped it
    /// describes what a start begins from (its state and emotion, bar 0).</summary>
    public sealed class AffettoStatus
    {
        public string Session { get; internal set; }
        public string State { get; internal set; }
        public float Valence { get; internal set; }
        public float Arousal { get; internal set; }
        public float Tension { get; internal set; }
        public float TempoBpm { get; internal set; }
        public int Bar { get; internal set; }
        /// <summary>Whether the music is playing (false while paused or stopped).</summary>
        public bool Playing { get; internal set; }
        /// <summary>Whether it is paused (Transport("pause")).</summary>
        public bool Paused { get; internal set; }
        /// <summary>The key, e.g. "Bb minor" (empty before the music has one).</summary>
        public string Key { get; internal set; }
        /// <summary>The session's profile's name.</summary>
        public string Profile { get; internal set; }
        /// <summary>The outputs the session plays into ("notes", "audio", "midi"); empty: silent.</summary>
        public string[] Outputs { get; internal set; }
        /// <summary>The profile's parameter names (SetParam).</summary>
        public string[] Params { get; internal set; }
        public string[] States { get; internal set; }
        public string[] Stingers { get; internal set; }
        /// <summary>The layers heard in the current bar.</summary>
        public string[] Layers { get; internal set; }
        /// <summary>The session's volume, [0, 1].</summary>
        public float Level { get; internal set; }

        public override string ToString()
        {
            return "status of " + Session + ": " + State + (Paused ? " (paused)" : Playing ? "" : " (stopped)")
                   + ", bar " + Bar + ", " + Key + ", level " + Level;
        }
    }

    /// <summary>The answer to <see cref="AffettoOscClient.Hello"/>.</summary>
    public sealed class AffettoHello
    {
        /// <summary>The session's name.</summary>
        public string Session { get; internal set; }
        /// <summary>The protocol version (1).</summary>
        public int Version { get; internal set; }
        public string[] States { get; internal set; }
        public string[] Stingers { get; internal set; }
        /// <summary>The profile's parameter names.</summary>
        public string[] Params { get; internal set; }
        /// <summary>The outputs the server offers ("notes" always; "audio", "midi" when it opened them).</summary>
        public string[] AvailableOutputs { get; internal set; }
        /// <summary>The profile's layers (the names in OnNote, OnVolume and SetVolume).</summary>
        public string[] LayerNames { get; internal set; }

        public override string ToString()
        {
            return "hello from " + Session + " (protocol " + Version + "): states " + string.Join(",", States)
                   + "; outputs " + string.Join(",", AvailableOutputs);
        }
    }

    /// <summary>The reading of one line of story text (the answer to <see cref="AffettoOscClient.Text"/>,
    /// sent to this client only, a few ms after the line).</summary>
    public sealed class AffettoText
    {
        /// <summary>The line's own valence, [-1, 1].</summary>
        public float Valence { get; internal set; }
        /// <summary>The line's own arousal, [-1, 1].</summary>
        public float Arousal { get; internal set; }
        /// <summary>How sure the model is of them, (0, 1].</summary>
        public float Confidence { get; internal set; }
        /// <summary>The session's story arc after this line (its scene): valence, [-1, 1].</summary>
        public float SceneValence { get; internal set; }
        /// <summary>The scene's arousal, [-1, 1].</summary>
        public float SceneArousal { get; internal set; }
        /// <summary>The scene's quadrant: "+V+A", "-V+A", "-V-A" or "+V-A".</summary>
        public string Scene { get; internal set; }
        /// <summary>Whether this line began a new scene: the session's emotion moves to the scene's at the
        /// profile's transition sync point, and OnTransition follows.</summary>
        public bool Changed { get; internal set; }

        public override string ToString()
        {
            return "text: line (" + Valence + ", " + Arousal + ") at " + Confidence + ", scene " + Scene
                   + " (" + SceneValence + ", " + SceneArousal + ")" + (Changed ? ", changed" : "");
        }
    }

    /// <summary>One decoded OSC message: its address and arguments (int, long, float, double, string,
    /// byte[], bool or null).</summary>
    public sealed class OscMessage
    {
        public readonly string Address;
        public readonly object[] Args;

        public OscMessage(string address, object[] args)
        {
            Address = address;
            Args = args;
        }

        public override string ToString()
        {
            return Address + " [" + string.Join(", ", Array.ConvertAll(Args, a => a == null ? "nil" : a.ToString())) + "]";
        }
    }

    /// <summary>A small OSC 1.0 codec. Encodes int (i), long (h), float (f), double (d), string (s),
    /// byte[] (b), bool (T/F) and null (N); decodes those types plus S (string) and I (impulse, as
    /// null), and flattens bundles (their time tags are ignored).</summary>
    public static class Osc
    {
        public const int MaxPacketBytes = 8192;
        public const int MaxBundleDepth = 4;

        /// <summary>The bytes of one OSC message.</summary>
        /// <exception cref="ArgumentException">an address that does not start with '/', or an argument of
        /// an unsupported type.</exception>
        public static byte[] Encode(string address, params object[] args)
        {
            if (address == null || !address.StartsWith("/", StringComparison.Ordinal))
                throw new ArgumentException("an OSC address must start with '/'", "address");
            var tags = new StringBuilder(",");
            var payload = new List<byte>();
            foreach (object arg in args ?? new object[0])
            {
                if (arg is int) { tags.Append('i'); AddBigEndian(payload, BitConverter.GetBytes((int)arg)); }
                else if (arg is long) { tags.Append('h'); AddBigEndian(payload, BitConverter.GetBytes((long)arg)); }
                else if (arg is float) { tags.Append('f'); AddBigEndian(payload, BitConverter.GetBytes((float)arg)); }
                else if (arg is double) { tags.Append('d'); AddBigEndian(payload, BitConverter.GetBytes((double)arg)); }
                else if (arg is string) { tags.Append('s'); AddString(payload, (string)arg); }
                else if (arg is bool) { tags.Append((bool)arg ? 'T' : 'F'); }
                else if (arg == null) { tags.Append('N'); }
                else if (arg is byte[])
                {
                    var blob = (byte[])arg;
                    tags.Append('b');
                    AddBigEndian(payload, BitConverter.GetBytes(blob.Length));
                    payload.AddRange(blob);
                    while (payload.Count % 4 != 0) payload.Add(0);
                }
                else throw new ArgumentException("cannot encode an OSC argument of type " + arg.GetType().Name, "args");
            }
            var packet = new List<byte>();
            AddString(packet, address);
            AddString(packet, tags.ToString());
            packet.AddRange(payload);
            return packet.ToArray();
        }

        /// <summary>The messages of one packet (a message, or a bundle flattened in order).</summary>
        /// <exception cref="FormatException">not valid OSC, or over a limit.</exception>
        public static List<OscMessage> Decode(byte[] data, int length)
        {
            if (length > MaxPacketBytes)
                throw new FormatException("packet of " + length + " bytes exceeds " + MaxPacketBytes);
            var messages = new List<OscMessage>();
            DecodeInto(data, 0, length, 0, messages);
            return messages;
        }

        static void DecodeInto(byte[] data, int start, int end, int depth, List<OscMessage> messages)
        {
            int size = end - start;
            if (size <= 0 || size % 4 != 0)
                throw new FormatException("an OSC packet's size must be a positive multiple of 4, got " + size);
            if (size >= 16 && IsBundle(data, start))
            {
                if (depth >= MaxBundleDepth) throw new FormatException("bundles nested too deep");
                int pos = start + 16;  // "#bundle\0" and the 8-byte time tag
                while (pos < end)
                {
                    int elementSize = ReadInt32(data, pos, end);
                    pos += 4;
                    if (elementSize <= 0 || elementSize % 4 != 0 || pos + elementSize > end)
                        throw new FormatException("bad bundle element size " + elementSize);
                    DecodeInto(data, pos, pos + elementSize, depth + 1, messages);
                    pos += elementSize;
                }
                return;
            }
            string address = ReadString(data, start, end, out int p);
            if (!address.StartsWith("/", StringComparison.Ordinal))
                throw new FormatException("an OSC address must start with '/'");
            if (p == end)
            {
                messages.Add(new OscMessage(address, new object[0]));
                return;
            }
            string tags = ReadString(data, p, end, out p);
            if (!tags.StartsWith(",", StringComparison.Ordinal))
                throw new FormatException("the type tag string must start with ','");
            var args = new object[tags.Length - 1];
            for (int i = 1; i < tags.Length; i++)
            {
                switch (tags[i])
                {
                    case 'i': args[i - 1] = ReadInt32(data, p, end); p += 4; break;
                    case 'f': args[i - 1] = BitConverter.ToSingle(BigEndian(data, p, 4, end), 0); p += 4; break;
                    case 'h': args[i - 1] = BitConverter.ToInt64(BigEndian(data, p, 8, end), 0); p += 8; break;
                    case 'd': args[i - 1] = BitConverter.ToDouble(BigEndian(data, p, 8, end), 0); p += 8; break;
                    case 's':
                    case 'S': args[i - 1] = ReadString(data, p, end, out p); break;
                    case 'T': args[i - 1] = true; break;
                    case 'F': args[i - 1] = false; break;
                    case 'N':
                    case 'I': args[i - 1] = null; break;
                    case 'b':
                        int blobSize = ReadInt32(data, p, end);
                        p += 4;
                        if (blobSize < 0 || p + Pad4(blobSize) > end) throw new FormatException("bad blob size");
                        var blob = new byte[blobSize];
                        Array.Copy(data, p, blob, 0, blobSize);
                        args[i - 1] = blob;
                        p += Pad4(blobSize);
                        break;
                    default: throw new FormatException("unsupported OSC type tag '" + tags[i] + "'");
                }
            }
            if (p != end) throw new FormatException((end - p) + " bytes left after the last argument");
            messages.Add(new OscMessage(address, args));
        }

        static int Pad4(int n) { return (n + 3) & ~3; }

        static readonly byte[] BundleTag = Encoding.ASCII.GetBytes("#bundle\0");

        static bool IsBundle(byte[] data, int start)
        {
            for (int i = 0; i < BundleTag.Length; i++)
                if (data[start + i] != BundleTag[i]) return false;
            return true;
        }

        static void AddString(List<byte> buffer, string text)
        {
            buffer.AddRange(Encoding.UTF8.GetBytes(text));
            buffer.Add(0);
            while (buffer.Count % 4 != 0) buffer.Add(0);
        }

        static void AddBigEndian(List<byte> buffer, byte[] bytes)
        {
            if (BitConverter.IsLittleEndian) Array.Reverse(bytes);
            buffer.AddRange(bytes);
        }

        static byte[] BigEndian(byte[] data, int pos, int count, int end)
        {
            if (pos + count > end) throw new FormatException("argument runs past the end of the packet");
            var bytes = new byte[count];
            Array.Copy(data, pos, bytes, 0, count);
            if (BitConverter.IsLittleEndian) Array.Reverse(bytes);
            return bytes;
        }

        static int ReadInt32(byte[] data, int pos, int end)
        {
            return BitConverter.ToInt32(BigEndian(data, pos, 4, end), 0);
        }

        static string ReadString(byte[] data, int pos, int end, out int next)
        {
            int zero = Array.IndexOf(data, (byte)0, pos, end - pos);
            if (zero < 0) throw new FormatException("string is not NUL-terminated");
            next = Pad4(zero + 1 - pos) + pos;
            if (next > end) throw new FormatException("string padding runs past the end of the packet");
            return Encoding.UTF8.GetString(data, pos, zero - pos);
        }
    }

    /// <summary>
    /// An affetto client over OSC/UDP, usable from any thread-free game loop: call the operations,
    /// then call <see cref="Poll"/> once per frame to raise the events that arrived since.
    /// Every operation validates its arguments and throws ArgumentException (or its subclass
    /// ArgumentOutOfRangeException / ArgumentNullException) before anything is sent. OSC operations
    /// are not acknowledged: the server reports bad ones through <see cref="OnError"/>.
    /// </summary>
    public sealed class AffettoOscClient : IDisposable
    {
        public const int DefaultServerPort = 9000;
        public const int MaxNameLength = 64;
        public const int MaxTextLength = 10000;
        /// <summary>The most UTF-8 bytes of a Text() line: its /affetto/text message must fit one OSC packet
        /// (<see cref="Osc.MaxPacketBytes"/>, less the address, the type tags and the string's NUL).</summary>
        public const int MaxTextBytes = Osc.MaxPacketBytes - 16 - 4 - 1;
        public const int MaxOutputs = 8;
        public const int MaxTokenLength = 256;
        /// <summary>The longest fade, in seconds (SetVolume, Transport("stop", fadeOutS)).</summary>
        public const float MaxFadeSeconds = 60f;
        /// <summary>The output every server has: the session's notes as OnNote events (SetOutputs(NotesOutput)).</summary>
        public const string NotesOutput = "notes";

        /// <summary>Where a change lands: now, on the next beat, bar or phrase.</summary>
        public static readonly string[] SyncPoints = { "immediate", "beat", "bar", "phrase" };

        /// <summary>Transport actions: start, pause and resume take no value; stop an optional fade-out; tempo
        /// and seed a number; sync a sync point.</summary>
        public static readonly string[] TransportActions = { "start", "stop", "pause", "resume", "tempo", "seed", "sync" };

        /// <summary>A beat sounded (subscribers only).</summary>
        public event BeatHandler OnBeat;
        /// <summary>A bar started (subscribers only).</summary>
        public event BarHandler OnBar;
        /// <summary>A scheduled change landed (subscribers only).</summary>
        public event TransitionHandler OnTransition;
        /// <summary>The answer to <see cref="Status"/> (and to the keep-alive).</summary>
        public event StatusHandler OnStatus;
        /// <summary>The answer to <see cref="Hello"/>.</summary>
        public event HelloHandler OnHello;
        /// <summary>The answer to <see cref="Sessions"/>.</summary>
        public event SessionsHandler OnSessions;
        /// <summary>A note-on or note-off of the session (subscribers with the "notes" output only).</summary>
        public event NoteHandler OnNote;
        /// <summary>A volume change starts (subscribers only).</summary>
        public event VolumeHandler OnVolume;
        /// <summary>The reading of a line sent with <see cref="Text"/> (to this client, subscribed or not).</summary>
        public event TextHandler OnText;
        /// <summary>The server rejected an operation, or sent a malformed packet.</summary>
        public event ErrorHandler OnError;
        /// <summary>Every message received, before the typed events (for addresses this client does not know).</summary>
        public event Action<OscMessage> OnMessage;

        /// <summary>Poll() sends a status request when nothing was sent for this many seconds, so the
        /// server does not expire the session of a client that only listens (it expires sessions after
        /// `affetto serve --idle-timeout` seconds without a request, 60 by default). The answers raise
        /// OnStatus like any other. 0 disables it.</summary>
        public float KeepAliveSeconds = 20f;

        readonly UdpClient _udp;
        readonly IPEndPoint _server;
        readonly Thread _receiver;
        readonly ConcurrentQueue<OscMessage> _inbox = new ConcurrentQueue<OscMessage>();
        readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        long _lastSendMs;
        volatile bool _disposed;

        /// <param name="host">the server's host name or IPv4 address (default: loopback).</param>
        /// <param name="serverPort">the server's OSC port (`affetto serve --osc-port`).</param>
        /// <param name="localPort">the local UDP port to send from and receive events on (0: any free port).</param>
        /// <exception cref="ArgumentException">a port out of range, or a host without an IPv4 address.</exception>
        /// <exception cref="SocketException">the local port is in use, or the host name cannot be resolved.</exception>
        public AffettoOscClient(string host = "127.0.0.1", int serverPort = DefaultServerPort, int localPort = 0)
        {
            if (string.IsNullOrEmpty(host)) throw new ArgumentException("host must not be empty", "host");
            if (serverPort < 1 || serverPort > 65535)
                throw new ArgumentOutOfRangeException("serverPort", serverPort, "a UDP port is 1..65535");
            if (localPort < 0 || localPort > 65535)
                throw new ArgumentOutOfRangeException("localPort", localPort, "a UDP port is 0..65535 (0: any)");
            _server = new IPEndPoint(ResolveIPv4(host), serverPort);
            _udp = new UdpClient(new IPEndPoint(IPAddress.Any, localPort));
            _udp.Client.ReceiveTimeout = 250;  // ms: the receive thread checks for Dispose() this often
            LocalPort = ((IPEndPoint)_udp.Client.LocalEndPoint).Port;
            _receiver = new Thread(ReceiveLoop) { IsBackground = true, Name = "affetto-osc-receive" };
            _receiver.Start();
        }

        /// <summary>The local UDP port the operations are sent from and the events arrive on.</summary>
        public int LocalPort { get; private set; }

        /// <summary>The server's address.</summary>
        public IPEndPoint Server { get { return _server; } }

        // ---- operations -------------------------------------------------------------------------

        /// <summary>Set the emotion: valence, arousal and (optionally) tension in [-1, 1]; tension null keeps
        /// the current one. sync: null (server default, immediate) or one of <see cref="SyncPoints"/>.</summary>
        public void SetEmotion(float valence, float arousal, float? tension = null, string sync = null)
        {
            CheckUnit(valence, "valence");
            CheckUnit(arousal, "arousal");
            if (tension.HasValue) CheckUnit(tension.Value, "tension");
            CheckSync(sync, "sync");
            var args = new List<object> { valence, arousal };
            if (tension.HasValue) args.Add(tension.Value);
            if (sync != null) args.Add(sync);
            Send("/affetto/emotion", args.ToArray());
        }

        /// <summary>Switch to a state of the session's profile (explore, calm, stealth, mystery, danger,
        /// combat, victory, sorrow by default). An unknown name is reported through OnError.</summary>
        public void SetState(string name, string sync = null)
        {
            CheckName(name, "name");
            CheckSync(sync, "sync");
            Send("/affetto/state", sync == null ? new object[] { name } : new object[] { name, sync });
        }

        /// <summary>Set a game parameter declared in the session's profile (mapped to emotion by its curve).</summary>
        public void SetParam(string name, float value)
        {
            CheckName(name, "name");
            CheckFinite(value, "value");
            Send("/affetto/param", name, value);
        }

        /// <summary>Play a stinger (hit, rise, fall, fanfare, reveal by default) on the next beat.</summary>
        public void Stinger(string name)
        {
            CheckName(name, "name");
            Send("/affetto/stinger", name);
        }

        /// <summary>Play a registered leitmotif (sync: null for the server default, bar).</summary>
        public void Leitmotif(string name, string sync = null)
        {
            CheckName(name, "name");
            CheckSync(sync, "sync");
            Send("/affetto/leitmotif", sync == null ? new object[] { name } : new object[] { name, sync });
        }

        /// <summary>Transport "start" (begins again from bar 0), "stop" (releases every note at once),
        /// "pause" (holds the music where it is, sounding notes released) or "resume" (goes on from there).</summary>
        public void Transport(string action)
        {
            CheckAction(action);
            if (action != "start" && action != "stop" && action != "pause" && action != "resume")
                throw new ArgumentException("transport '" + action + "' needs a value", "action");
            Send("/affetto/transport", action);
        }

        /// <summary>Transport "tempo" (BPM in [20, 400], or 0 to follow arousal again) or "stop" with a
        /// fade-out (seconds in [0, 60], after which the music stops; the level stays as it was for the
        /// next start).</summary>
        public void Transport(string action, float value)
        {
            CheckAction(action);
            if (action == "stop")
            {
                CheckFade(value, "value");
                Send("/affetto/transport", action, value);
                return;
            }
            if (action != "tempo")
                throw new ArgumentException("only transport 'tempo' and 'stop' take a float value (seed takes an int)", "action");
            CheckFinite(value, "value");
            if (value != 0f && (value < 20f || value > 400f))
                throw new ArgumentOutOfRangeException("value", value, "tempo is 0 (follow arousal) or 20..400 BPM");
            Send("/affetto/transport", action, value);
        }

        /// <summary>Transport "seed" (an int ≥ 0, applies from the next start), "tempo" (whole BPM) or
        /// "stop" (a fade-out of whole seconds).</summary>
        public void Transport(string action, int value)
        {
            CheckAction(action);
            if (action == "tempo" || action == "stop")
            {
                Transport(action, (float)value);
                return;
            }
            if (action != "seed")
                throw new ArgumentException("transport '" + action + "' does not take an int value", "action");
            if (value < 0) throw new ArgumentOutOfRangeException("value", value, "seed must be >= 0");
            Send("/affetto/transport", action, value);
        }

        /// <summary>Transport "sync": the session's default sync point for emotion changes.</summary>
        public void Transport(string action, string value)
        {
            CheckAction(action);
            if (action != "sync")
                throw new ArgumentException("transport '" + action + "' does not take a string value", "action");
            if (value == null) throw new ArgumentNullException("value");
            CheckSync(value, "value");
            Send("/affetto/transport", action, value);
        }

        /// <summary>Set the volume: level in [0, 1] (linear gain; 1 is the profile's mix, 0 silent) for the
        /// whole session, or with layer (a layer of the session's profile) for that layer; fadeS in [0, 60]
        /// moves there over that many seconds (null: at once). Subscribers get OnVolume as it starts. An
        /// unknown layer is reported through OnError.</summary>
        public void SetVolume(float level, float? fadeS = null, string layer = null)
        {
            CheckFinite(level, "level");
            if (level < 0f || level > 1f) throw new ArgumentOutOfRangeException("level", level, "level must be in [0, 1]");
            if (fadeS.HasValue) CheckFade(fadeS.Value, "fadeS");
            if (layer != null) CheckName(layer, "layer");
            var args = new List<object> { level };
            if (fadeS.HasValue) args.Add(fadeS.Value);
            if (layer != null) args.Add(layer);  // "/affetto/volume f s" when there is no fade
            Send("/affetto/volume", args.ToArray());
        }

        /// <summary>Ask the server to send events (beat, bar, transition, note, volume, status, error) to this
        /// client's <see cref="LocalPort"/>. This makes the socket a client of its own on the server, with
        /// its own session: subscribe before <see cref="Session"/> and the operations.</summary>
        public void Subscribe()
        {
            Send("/affetto/subscribe", LocalPort);
        }

        /// <summary>Stop the events.</summary>
        public void Unsubscribe()
        {
            Send("/affetto/unsubscribe");
        }

        /// <summary>Join (or create) the named session, shared with every client that joins it.</summary>
        public void Session(string name)
        {
            CheckName(name, "name");
            Send("/affetto/session", name);
        }

        /// <summary>Play this session into these outputs, at most <see cref="MaxOutputs"/> names; none for
        /// silence (events only): "notes" (<see cref="NotesOutput"/>, every server: the session's notes as
        /// <see cref="OnNote"/> events to its subscribers), "audio" (`affetto serve --audio`), "midi"
        /// (`--midi-port`). An output the server did not open is reported through OnError.</summary>
        public void SetOutputs(params string[] names)
        {
            if (names == null) throw new ArgumentNullException("names");
            if (names.Length > MaxOutputs)
                throw new ArgumentException("at most " + MaxOutputs + " outputs, got " + names.Length, "names");
            var args = new object[names.Length];
            for (int i = 0; i < names.Length; i++)
            {
                CheckName(names[i], "names");
                args[i] = names[i];
            }
            Send("/affetto/output", args);
        }

        /// <summary>Send one line of story text (1 to 10,000 characters, at most <see cref="MaxTextBytes"/> bytes
        /// in UTF-8). Once the server has read it (a few ms later) <see cref="OnText"/> gets its reading: the
        /// line's emotion and the session's story arc after it, which changes only when the story does (never
        /// on one line); a new scene moves the music there at the profile's transition sync point
        /// (OnTransition follows). Subscribe first: the reading comes to this socket either way, but before
        /// Subscribe() the line drives the host's session. A server without a text emotion model answers
        /// OnError "unsupported"; 8 lines of the session waiting to be read, "rate_limited".</summary>
        public void Text(string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            if (text.Length == 0 || text.Length > MaxTextLength)
                throw new ArgumentException("text must be 1.." + MaxTextLength + " characters, got " + text.Length, "text");
            CheckNoNul(text, "text");
            int bytes = Encoding.UTF8.GetByteCount(text);
            if (bytes > MaxTextBytes)
                throw new ArgumentException("text is " + bytes + " bytes in UTF-8; one OSC packet holds " + MaxTextBytes, "text");
            Send("/affetto/text", text);
        }

        /// <summary>Request the session's status; the answer raises <see cref="OnStatus"/>.</summary>
        public void Status()
        {
            Send("/affetto/status");
        }

        /// <summary>Request the list of the sessions open on the server (to join one with
        /// <see cref="Session"/>); the answer raises <see cref="OnSessions"/>.</summary>
        public void Sessions()
        {
            Send("/affetto/sessions");
        }

        /// <summary>Request the hello (the session's name, the protocol version, the profile's states,
        /// stingers, parameters and layers, the server's outputs); the answer raises <see cref="OnHello"/>.
        /// token: the shared secret, when the server is bound beyond loopback (null: none).</summary>
        public void Hello(string token = null)
        {
            if (token == null)
            {
                Send("/affetto/hello");
                return;
            }
            if (token.Length == 0 || token.Length > MaxTokenLength)
                throw new ArgumentException("token must be 1.." + MaxTokenLength + " characters, got " + token.Length, "token");
            CheckNoNul(token, "token");
            Send("/affetto/hello", token);
        }

        /// <summary>Send any OSC message to the server (the typed operations above are preferred).</summary>
        public void Send(string address, params object[] args)
        {
            if (_disposed) throw new ObjectDisposedException("AffettoOscClient");
            byte[] packet = Osc.Encode(address, args);
            _udp.Send(packet, packet.Length, _server);
            Interlocked.Exchange(ref _lastSendMs, _clock.ElapsedMilliseconds);
        }

        // ---- events ------------------------------------------------------------------------------

        /// <summary>Raise the events received since the last call, on the calling thread, and send the
        /// keep-alive when due. Returns how many messages were handled. Call it once per frame.</summary>
        public int Poll()
        {
            if (_disposed) throw new ObjectDisposedException("AffettoOscClient");
            if (KeepAliveSeconds > 0f
                && _clock.ElapsedMilliseconds - Interlocked.Read(ref _lastSendMs) > (long)(KeepAliveSeconds * 1000f))
                Status();
            int handled = 0;
            OscMessage message;
            while (_inbox.TryDequeue(out message))
            {
                handled++;
                Dispatch(message);
            }
            return handled;
        }

        void Dispatch(OscMessage m)
        {
            var onMessage = OnMessage;
            if (onMessage != null) onMessage(m);
            object[] a = m.Args;
            switch (m.Address)
            {
                case "/affetto/beat":
                    if (!Shape(m, "nnnn")) return;
                    var onBeat = OnBeat;
                    if (onBeat != null) onBeat(AsInt(a[0]), AsInt(a[1]), AsFloat(a[2]), AsFloat(a[3]));
                    break;
                case "/affetto/bar":
                    if (!Shape(m, "nsnnnnssn")) return;
                    var onBar = OnBar;
                    if (onBar != null)
                        onBar(AsInt(a[0]), (string)a[1], AsFloat(a[2]), AsFloat(a[3]), AsFloat(a[4]), AsFloat(a[5]),
                              (string)a[6], Names(a[7]), AsFloat(a[8]));
                    break;
                case "/affetto/transition":
                    if (!Shape(m, "sn")) return;
                    var onTransition = OnTransition;
                    if (onTransition != null) onTransition((string)a[0], AsFloat(a[1]));
                    break;
                case "/affetto/status":
                    if (!Shape(m, "ssnnnnnnnsssssssn")) return;
                    var onStatus = OnStatus;
                    if (onStatus != null)
                        onStatus(new AffettoStatus
                        {
                            Session = (string)a[0], State = (string)a[1], Valence = AsFloat(a[2]), Arousal = AsFloat(a[3]),
                            Tension = AsFloat(a[4]), TempoBpm = AsFloat(a[5]), Bar = AsInt(a[6]),
                            Playing = AsInt(a[7]) != 0, Paused = AsInt(a[8]) != 0, Key = (string)a[9],
                            Profile = (string)a[10], Outputs = Names(a[11]), Params = Names(a[12]), States = Names(a[13]),
                            Stingers = Names(a[14]), Layers = Names(a[15]), Level = AsFloat(a[16]),
                        });
                    break;
                case "/affetto/hello":
                    if (!Shape(m, "snsssss")) return;
                    var onHello = OnHello;
                    if (onHello != null)
                        onHello(new AffettoHello
                        {
                            Session = (string)a[0], Version = AsInt(a[1]), States = Names(a[2]), Stingers = Names(a[3]),
                            Params = Names(a[4]), AvailableOutputs = Names(a[5]), LayerNames = Names(a[6]),
                        });
                    break;
                case "/affetto/sessions":
                    if (!Shape(m, "ss")) return;
                    var onSessions = OnSessions;
                    if (onSessions != null) onSessions(Names(a[0]), Names(a[1]));
                    break;
                case "/affetto/note":
                    if (!Shape(m, "nnnns")) return;
                    var onNote = OnNote;
                    if (onNote != null) onNote(AsInt(a[0]), AsInt(a[1]), AsInt(a[2]), (string)a[4], AsFloat(a[3]));
                    break;
                case "/affetto/volume":
                    if (!Shape(m, "snnn")) return;
                    var onVolume = OnVolume;
                    string volumeLayer = (string)a[0];
                    if (onVolume != null)
                        onVolume(volumeLayer.Length == 0 ? null : volumeLayer, AsFloat(a[1]), AsFloat(a[2]), AsFloat(a[3]));
                    break;
                case "/affetto/text":
                    if (!Shape(m, "nnnnnns")) return;
                    var onText = OnText;
                    if (onText != null)
                        onText(new AffettoText
                        {
                            Valence = AsFloat(a[0]), Arousal = AsFloat(a[1]), Confidence = AsFloat(a[2]),
                            SceneValence = AsFloat(a[3]), SceneArousal = AsFloat(a[4]), Changed = AsInt(a[5]) != 0,
                            Scene = (string)a[6],
                        });
                    break;
                case "/affetto/error":
                    if (!Shape(m, "ss")) return;
                    RaiseError((string)a[0], (string)a[1]);
                    break;
            }
        }

        // Checks the leading arguments' kinds (n: number, s: string); extra trailing arguments are
        // allowed (later protocol versions may append some). A mismatch is reported through OnError.
        bool Shape(OscMessage m, string kinds)
        {
            bool ok = m.Args.Length >= kinds.Length;
            for (int i = 0; ok && i < kinds.Length; i++)
                ok = kinds[i] == 's' ? m.Args[i] is string : IsNumber(m.Args[i]);
            if (!ok) RaiseError("bad_message", "unexpected arguments from the server: " + m);
            return ok;
        }

        void RaiseError(string code, string message)
        {
            var onError = OnError;
            if (onError != null) onError(code, message);
        }

        // A list of names over OSC: one string, the names separated by commas ("": none).
        static string[] Names(object o)
        {
            var text = (string)o;
            return text.Length == 0 ? new string[0] : text.Split(',');
        }

        static bool IsNumber(object o) { return o is int || o is long || o is float || o is double; }
        static int AsInt(object o) { return o is int ? (int)o : o is long ? (int)(long)o : (int)Math.Round(Convert.ToDouble(o)); }
        static float AsFloat(object o) { return Convert.ToSingle(o); }

        void ReceiveLoop()
        {
            var buffer = new byte[Osc.MaxPacketBytes];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            while (!_disposed)
            {
                int length;
                try
                {
                    length = _udp.Client.ReceiveFrom(buffer, ref from);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut
                                                || e.SocketErrorCode == SocketError.WouldBlock)
                {
                    continue;  // nothing arrived: check _disposed again
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    continue;  // Windows reports an earlier send's ICMP "port unreachable" here: no server yet
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
                {
                    Enqueue(ErrorMessage("received a packet larger than " + Osc.MaxPacketBytes + " bytes"));
                    continue;
                }
                catch (SocketException) when (_disposed)
                {
                    return;  // Dispose() closed the socket under the blocking receive
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException e)
                {
                    Enqueue(new OscMessage("/affetto/error", new object[] {
                        "closed", "receiving failed (" + e.SocketErrorCode + "): " + e.Message + "; no more events" }));
                    return;
                }
                // Only the server's host may send events (anyone could reach an open UDP port).
                if (!((IPEndPoint)from).Address.Equals(_server.Address)) continue;
                try
                {
                    foreach (OscMessage m in Osc.Decode(buffer, length))
                    {
                        // The server sends events only once this socket proves it receives them:
                        // it echoes the subscription's nonce at once (see PROTOCOL.md, Subscriptions).
                        if (m.Address == "/affetto/challenge" && m.Args.Length == 1 && m.Args[0] is string)
                            Confirm((string)m.Args[0]);
                        else
                            Enqueue(m);
                    }
                }
                catch (FormatException e)
                {
                    Enqueue(ErrorMessage("received a malformed OSC packet: " + e.Message));
                }
            }
        }

        void Confirm(string nonce)
        {
            try
            {
                Send("/affetto/confirm", nonce);
            }
            catch (ObjectDisposedException)
            {
                // closing: no more events are wanted
            }
            catch (SocketException e)
            {
                Enqueue(new OscMessage("/affetto/error", new object[] {
                    "closed", "could not confirm the subscription (" + e.SocketErrorCode + "): " + e.Message }));
            }
        }

        void Enqueue(OscMessage m)
        {
            if (_inbox.Count < 4096) _inbox.Enqueue(m);  // bounded, should Poll() stop being called
        }

        static OscMessage ErrorMessage(string text)
        {
            return new OscMessage("/affetto/error", new object[] { "bad_message", text });
        }

        /// <summary>Close the socket and stop the receive thread (the server's session expires on its own).</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _udp.Close();
            _receiver.Join(1000);
        }

        // ---- validation -------------------------------------------------------------------------

        static IPAddress ResolveIPv4(string host)
        {
            IPAddress parsed;
            if (IPAddress.TryParse(host, out parsed))
            {
                if (parsed.AddressFamily != AddressFamily.InterNetwork)
                    throw new ArgumentException("only IPv4 servers are supported, got " + host, "host");
                return parsed;
            }
            foreach (IPAddress address in Dns.GetHostAddresses(host))
                if (address.AddressFamily == AddressFamily.InterNetwork) return address;
            throw new ArgumentException("host '" + host + "' has no IPv4 address", "host");
        }

        static void CheckFinite(float value, string param)
        {
            if (float.IsNaN(value) || float.IsInfinity(value))
                throw new ArgumentException(param + " must be a finite number, got " + value, param);
        }

        static void CheckUnit(float value, string param)
        {
            CheckFinite(value, param);
            if (value < -1f || value > 1f)
                throw new ArgumentOutOfRangeException(param, value, param + " must be in [-1, 1]");
        }

        static void CheckFade(float seconds, string param)
        {
            CheckFinite(seconds, param);
            if (seconds < 0f || seconds > MaxFadeSeconds)
                throw new ArgumentOutOfRangeException(param, seconds, param + " must be in [0, " + MaxFadeSeconds + "] seconds");
        }

        static void CheckName(string name, string param)
        {
            if (name == null) throw new ArgumentNullException(param);
            if (name.Length == 0 || name.Length > MaxNameLength)
                throw new ArgumentException(param + " must be 1.." + MaxNameLength + " characters, got " + name.Length, param);
            CheckNoNul(name, param);
        }

        static void CheckNoNul(string text, string param)
        {
            if (text.IndexOf('\0') >= 0) throw new ArgumentException(param + " must not contain NUL characters", param);
        }

        static void CheckSync(string sync, string param)
        {
            if (sync != null && Array.IndexOf(SyncPoints, sync) < 0)
                throw new ArgumentException(param + " must be one of " + string.Join(", ", SyncPoints) + ", got '" + sync + "'", param);
        }

        static void CheckAction(string action)
        {
            if (action == null) throw new ArgumentNullException("action");
            if (Array.IndexOf(TransportActions, action) < 0)
                throw new ArgumentException("action must be one of " + string.Join(", ", TransportActions) + ", got '" + action + "'", "action");
        }
    }

#if UNITY_5_3_OR_NEWER
    /// <summary>
    /// The Unity component: add it to a GameObject, set the server's host and port, and subscribe to
    /// its events from another script's Start(). Events are raised on the main thread, in Update().
    /// The client is created in Awake(), so other components can use it from their Start().
    /// </summary>
    [AddComponentMenu("Audio/Affetto Client")]
    public sealed class AffettoClient : MonoBehaviour
    {
        [Tooltip("The host running `affetto serve`.")]
        public string host = "127.0.0.1";
        [Tooltip("The server's OSC port (affetto serve --osc-port).")]
        public int serverPort = AffettoOscClient.DefaultServerPort;
        [Tooltip("The local UDP port for events (0: any free port).")]
        public int localPort = 0;
        [Tooltip("Join this named session on Start (empty: this client's own session).")]
        public string sessionName = "";
        [Tooltip("Subscribe to events (beats, bars, errors) on Start.")]
        public bool subscribeOnStart = true;
        [Tooltip("Receive the session's notes (OnNote) on Start, to play them with the game's own instruments, "
                 + "instead of the server's devices (the \"notes\" output).")]
        public bool notesOnStart = false;
        [Tooltip("Log the server's errors to the console.")]
        public bool logErrors = true;

        /// <summary>The underlying client (null before Awake and after OnDestroy).</summary>
        public AffettoOscClient Client { get; private set; }

        public event BeatHandler OnBeat;
        public event BarHandler OnBar;
        public event TransitionHandler OnTransition;
        public event StatusHandler OnStatus;
        public event HelloHandler OnHello;
        public event SessionsHandler OnSessions;
        public event NoteHandler OnNote;
        public event VolumeHandler OnVolume;
        public event TextHandler OnText;
        public event ErrorHandler OnError;

        void Awake()
        {
            try
            {
                Client = new AffettoOscClient(host, serverPort, localPort);
            }
            catch (SocketException e)
            {
                Debug.LogError("affetto: cannot open UDP port " + localPort + " or resolve " + host + ": " + e.Message, this);
                enabled = false;  // no Update(), no operations: fix the settings and restart the scene
                return;
            }
            Client.OnBeat += (bar, beat, tempo, time) => { var h = OnBeat; if (h != null) h(bar, beat, tempo, time); };
            Client.OnBar += (bar, state, v, a, t, tempo, key, layers, time) =>
            {
                var h = OnBar;
                if (h != null) h(bar, state, v, a, t, tempo, key, layers, time);
            };
            Client.OnTransition += (op, beat) => { var h = OnTransition; if (h != null) h(op, beat); };
            Client.OnStatus += status => { var h = OnStatus; if (h != null) h(status); };
            Client.OnHello += hello => { var h = OnHello; if (h != null) h(hello); };
            Client.OnSessions += (names, profiles) => { var h = OnSessions; if (h != null) h(names, profiles); };
            Client.OnNote += (channel, pitch, velocity, layer, time) =>
            {
                var h = OnNote;
                if (h != null) h(channel, pitch, velocity, layer, time);
            };
            Client.OnVolume += (layer, level, fade, time) => { var h = OnVolume; if (h != null) h(layer, level, fade, time); };
            Client.OnText += text => { var h = OnText; if (h != null) h(text); };
            Client.OnError += (code, message) =>
            {
                if (logErrors) Debug.LogWarning("affetto: " + code + ": " + message, this);
                var h = OnError;
                if (h != null) h(code, message);
            };
        }

        void Start()
        {
            if (Client == null) return;
            if (subscribeOnStart) Client.Subscribe();  // first: it gives this socket a session of its own
            if (!string.IsNullOrEmpty(sessionName)) Client.Session(sessionName);
            if (notesOnStart) Client.SetOutputs(AffettoOscClient.NotesOutput);
        }

        void Update()
        {
            Client.Poll();
        }

        void OnDestroy()
        {
            if (Client == null) return;
            Client.Dispose();
            Client = null;
        }

        // The operations, forwarded to Client (see AffettoOscClient for each one's arguments).
        public void SetEmotion(float valence, float arousal, float? tension = null, string sync = null)
        {
            Open.SetEmotion(valence, arousal, tension, sync);
        }

        public void SetState(string name, string sync = null) { Open.SetState(name, sync); }
        public void SetParam(string name, float value) { Open.SetParam(name, value); }
        public void Stinger(string name) { Open.Stinger(name); }
        public void Leitmotif(string name, string sync = null) { Open.Leitmotif(name, sync); }
        public void Transport(string action) { Open.Transport(action); }
        public void Transport(string action, float value) { Open.Transport(action, value); }
        public void Transport(string action, int value) { Open.Transport(action, value); }
        public void Transport(string action, string value) { Open.Transport(action, value); }
        public void SetVolume(float level, float? fadeS = null, string layer = null) { Open.SetVolume(level, fadeS, layer); }
        public void Subscribe() { Open.Subscribe(); }
        public void Unsubscribe() { Open.Unsubscribe(); }
        public void Session(string name) { Open.Session(name); }
        public void SetOutputs(params string[] names) { Open.SetOutputs(names); }
        public void Text(string text) { Open.Text(text); }
        public void Status() { Open.Status(); }
        public void Hello(string token = null) { Open.Hello(token); }
        public void Sessions() { Open.Sessions(); }

        AffettoOscClient Open
        {
            get
            {
                if (Client == null)
                    throw new InvalidOperationException("the affetto client is not open (see the error logged in Awake)");
                return Client;
            }
        }
    }
#endif
}
