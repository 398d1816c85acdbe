// AffettoComponent.h: an affetto client for Unreal Engine 5, on the engine's built-in OSC plugin.
//
// Add the component to an actor, set ServerHost/ServerPort (`affetto serve --osc-port`) and
// ListenPort (where the events come back), and bind OnBeat/OnBar/OnTransition/OnNote/OnVolume/
// OnStatus/OnHello/OnText/OnError in Blueprint or C++. Operations return false (and log why) for bad arguments
// instead of sending them. The protocol: bindings/PROTOCOL.md. Setup: bindings/unreal/README.md.
//
// Written against the OSC plugin's UOSCManager, UOSCClient and UOSCServer API of UE 5.x (5.3/5.4). affetto's
// tests have no Unreal: they compile this against API stand-ins (bindings/unreal/tests/stubs), not a real engine.

#pragma once

#include "CoreMinimal.h"
#include "Components/ActorComponent.h"
#include "OSCMessage.h"
#include "TimerManager.h"

#include "AffettoComponent.generated.h"

class UOSCClient;
class UOSCServer;

/** The answer to Status(). While stopped it describes what a start begins from (its state and emotion, bar 0). */
USTRUCT(BlueprintType)
struct FAffettoStatus
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "Affetto") FString Session;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") FString State;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Valence = 0.f;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Arousal = 0.f;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Tension = 0.f;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float TempoBpm = 0.f;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") int32 Bar = 0;
	/** Whether the music is playing (false while paused or stopped). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") bool bPlaying = false;
	/** Whether it is paused (TransportPause). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") bool bPaused = false;
	/** The key, e.g. "Bb minor" (empty before the music has one). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") FString Key;
	/** The session's profile's name. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") FString Profile;
	/** The outputs the session plays into (notes, audio, midi); empty: silent. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> Outputs;
	/** The profile's parameter names (SetParam). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> Params;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> States;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> Stingers;
	/** The layers heard in the current bar. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> Layers;
	/** The session's volume, [0, 1]. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Level = 0.f;
};

/** The answer to Hello(): what the session's profile and the server offer. */
USTRUCT(BlueprintType)
struct FAffettoHello
{
	GENERATED_BODY()

	UPROPERTY(BlueprintReadOnly, Category = "Affetto") FString Session;
	/** The protocol version (1). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") int32 Version = 0;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> States;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> Stingers;
	/** The profile's parameter names. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> Params;
	/** The outputs the server offers ("notes" always; "audio", "midi" when it opened them). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> AvailableOutputs;
	/** The profile's layers (the names in OnNote, OnVolume and SetVolume). */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") TArray<FString> LayerNames;
};

/** The reading of a line of story text sent with Text(): to this client only, once the server has read it. */
USTRUCT(BlueprintType)
struct FAffettoText
{
	GENERATED_BODY()

	/** The line's own valence, [-1, 1]. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Valence = 0.f;
	/** The line's own arousal, [-1, 1]. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Arousal = 0.f;
	/** How sure the model is of them, (0, 1]. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float Confidence = 0.f;
	/** The session's story arc after this line (its scene): valence and arousal, [-1, 1]. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float SceneValence = 0.f;
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") float SceneArousal = 0.f;
	/** The scene's quadrant: "+V+A", "-V+A", "-V-A" or "+V-A". */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") FString Scene;
	/** This line began a new scene: the session's emotion moves to the scene's at the profile's transition sync
	  * point, and OnTransition follows. */
	UPROPERTY(BlueprintReadOnly, Category = "Affetto") bool bChanged = false;
};

/** A beat sounded: Beat 0 is the downbeat; TimeS is when, on the session's clock. */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(FAffettoBeatEvent, int32, Bar, int32, Beat, float, TempoBpm, float, TimeS);
/** A bar started, with the session's musical state, its key ("Bb minor"), the layers heard in it (a note
  * sounding in the bar, not merely switched on) and when its downbeat sounds on the session's clock. */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_NineParams(FAffettoBarEvent, int32, Bar, const FString&, State, float, Valence,
	float, Arousal, float, Tension, float, TempoBpm, const FString&, Key, const TArray<FString>&, Layers, float, TimeS);
/** A scheduled change (Op: "state", "emotion", "stinger", ...) landed at that beat. */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FAffettoTransitionEvent, const FString&, Op, float, Beat);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FAffettoStatusEvent, const FAffettoStatus&, Status);
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FAffettoHelloEvent, const FAffettoHello&, Hello);
/** The answer to Sessions(): the sessions open on the server (at most 256, by name) and each one's profile. */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FAffettoSessionsEvent, const TArray<FString>&, Names,
	const TArray<FString>&, Profiles);
/** One note of the session (with the "notes" output): MIDI channel 0..15, pitch 0..127, velocity 1..127 for a
  * note-on and 0 for a note-off, its profile layer ("stinger" for a stinger's notes), and when it sounds on the
  * session's clock (OnBeat's TimeS). Play it with the game's own instruments. */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_FiveParams(FAffettoNoteEvent, int32, Channel, int32, Pitch, int32, Velocity,
	const FString&, Layer, float, TimeS);
/** A volume change starts: Layer ("" for the whole session) moves to Level in [0, 1] over FadeS seconds, from
  * TimeS on the session's clock. */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_FourParams(FAffettoVolumeEvent, const FString&, Layer, float, Level, float, FadeS,
	float, TimeS);
/** The reading of a line of story text sent with Text(). */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_OneParam(FAffettoTextEvent, const FAffettoText&, Reading);
/** The server rejected an operation (Code: bad_argument, unknown_op, rate_limited, ...). */
DECLARE_DYNAMIC_MULTICAST_DELEGATE_TwoParams(FAffettoErrorEvent, const FString&, Code, const FString&, Message);

UCLASS(ClassGroup = (Audio), meta = (BlueprintSpawnableComponent))
class UAffettoComponent : public UActorComponent
{
	GENERATED_BODY()

public:
	UAffettoComponent();

	/** The host running `affetto serve` (an IPv4 address: events are accepted from it only). */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto")
	FString ServerHost = TEXT("127.0.0.1");

	/** The server's OSC port (affetto serve --osc-port). */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto", meta = (ClampMin = "1", ClampMax = "65535"))
	int32 ServerPort = 9000;

	/** The local address the events are received on (0.0.0.0 when the server runs on another machine). */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto")
	FString ListenAddress = TEXT("127.0.0.1");

	/** The local UDP port the events are received on (sent to the server by Subscribe). */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto", meta = (ClampMin = "1", ClampMax = "65535"))
	int32 ListenPort = 9100;

	/** Join this named session on BeginPlay (empty: this client's own session). */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto")
	FString SessionName;

	/** Subscribe to the events on BeginPlay. */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto")
	bool bSubscribeOnBeginPlay = true;

	/** On BeginPlay, play the session into the "notes" output only: its notes come as OnNote, for the game's
	  * own instruments, instead of the server's devices. */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto")
	bool bNotesOnBeginPlay = false;

	/** Send a status request after this many seconds without a request, so the server does not expire
	  * the session of a client that only listens (its --idle-timeout, 60 s by default). 0: off. */
	UPROPERTY(EditAnywhere, BlueprintReadOnly, Category = "Affetto", meta = (ClampMin = "0"))
	float KeepAliveSeconds = 20.f;

	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoBeatEvent OnBeat;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoBarEvent OnBar;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoTransitionEvent OnTransition;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoNoteEvent OnNote;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoVolumeEvent OnVolume;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoStatusEvent OnStatus;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoHelloEvent OnHello;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoSessionsEvent OnSessions;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoTextEvent OnText;
	UPROPERTY(BlueprintAssignable, Category = "Affetto") FAffettoErrorEvent OnError;

	/** Valence and arousal in [-1, 1]; the tension stays. Sync: "" (immediate), beat, bar or phrase. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetEmotion(float Valence, float Arousal, const FString& Sync = TEXT(""));

	/** Valence, arousal and tension in [-1, 1]. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetEmotionWithTension(float Valence, float Arousal, float Tension, const FString& Sync = TEXT(""));

	/** A state of the session's profile (explore, calm, stealth, mystery, danger, combat, victory, sorrow). */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetState(const FString& Name, const FString& Sync = TEXT(""));

	/** A game parameter declared in the session's profile. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetParam(const FString& Name, float Value);

	/** hit, rise, fall, fanfare or reveal by default; plays on the next beat. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Stinger(const FString& Name);

	/** Play a registered leitmotif (Sync "": the server's default, bar). */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Leitmotif(const FString& Name, const FString& Sync = TEXT(""));

	/** Start the music again from bar 0. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool TransportStart();

	/** Stop: every note is released, after a fade-out of FadeOutS seconds in [0, 60] (0: at once); the level
	  * stays as it was for the next TransportStart, which begins again from bar 0. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool TransportStop(float FadeOutS = 0.f);

	/** Hold the music where it is (sounding notes released); TransportResume goes on from there. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool TransportPause();

	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool TransportResume();

	/** Level in [0, 1] (linear gain: 1 the profile's mix, 0 silent) for the whole session, or for Layer (a layer
	  * of the session's profile; "" for the session), moving there over FadeS seconds in [0, 60] (0: at once). */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetVolume(float Level, float FadeS = 0.f, const FString& Layer = TEXT(""));

	/** BPM in [20, 400], or 0 to follow arousal again. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetTempo(float Bpm);

	/** The seed of the next TransportStart (>= 0). */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetSeed(int32 Seed);

	/** The default sync point of emotion changes: immediate, beat, bar or phrase. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetDefaultSync(const FString& Sync);

	/** Ask for the events on ListenPort. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Subscribe();

	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Unsubscribe();

	/** Join (or create) a named session. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Session(const FString& Name);

	/** Play into these outputs, at most 8; none for silence (events only): notes (every server: the session's
	  * notes as OnNote), audio (affetto serve --audio), midi (--midi-port). One the server did not open raises
	  * OnError. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool SetOutputs(const TArray<FString>& Names);

	/** One line of story text: 1 to 10,000 characters, sent as UTF-8 (at most 8171 bytes: one OSC packet). Once the
	  * server has read it (a few ms later) its reading raises OnText: the line's emotion and the session's story arc
	  * after it, which changes only when the story does; a new scene moves the music there at the profile's
	  * transition sync point (OnTransition follows). A server without a text emotion model raises OnError
	  * "unsupported". The reading comes to ListenPort once subscribed (before that, to the client's own port). */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Text(const FString& Line);

	/** Request the status; the answer raises OnStatus. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Status();

	/** Request the hello (the session, the protocol version, the profile's states, stingers, parameters and
	  * layers, the server's outputs); the answer raises OnHello. Token: the shared secret ("": none). */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Hello(const FString& Token = TEXT(""));

	/** Request the sessions open on the server (to join one with Session); the answer raises OnSessions. */
	UFUNCTION(BlueprintCallable, Category = "Affetto")
	bool Sessions();

protected:
	virtual void BeginPlay() override;
	virtual void EndPlay(const EEndPlayReason::Type EndPlayReason) override;

private:
	UFUNCTION()
	void HandleOscMessage(const FOSCMessage& Message, const FString& IPAddress, int32 Port);

	void KeepAlive();
	bool Send(FOSCMessage& Message);
	static FOSCMessage MakeMessage(const FString& Address);
	static bool CheckUnit(float Value, const TCHAR* What);
	static bool CheckName(const FString& Name, const TCHAR* What);
	static bool CheckSync(const FString& Sync);
	static bool CheckFade(float Seconds, const TCHAR* What);
	static TArray<FString> SplitNames(const FString& Joined);

	UPROPERTY(Transient)
	TObjectPtr<UOSCClient> Client;

	UPROPERTY(Transient)
	TObjectPtr<UOSCServer> Server;

	FTimerHandle KeepAliveTimer;
	double LastSendSeconds = 0.0;
};
